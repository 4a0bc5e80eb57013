//! The README's configuration tables document exactly the variables the code reads: the
//! bus-wide ones, every backend's (gathered from the registry, so this needs every backend
//! compiled in), the event store's and the sagas'.
#![cfg(all(
    feature = "redis",
    feature = "rabbitmq",
    feature = "kafka",
    feature = "pubsub"
))]

use std::collections::BTreeSet;

use event_bus_tests::variables::{project_variables, readme_variables};

#[test]
fn the_readme_documents_exactly_the_variables() {
    let variables = project_variables();
    let listed: BTreeSet<String> = variables.iter().map(|v| (*v).to_owned()).collect();
    assert_eq!(listed.len(), variables.len(), "a variable is listed twice");
    assert_eq!(readme_variables(), listed);
}
