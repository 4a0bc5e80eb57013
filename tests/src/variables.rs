//! Every environment variable the project reads, gathered from the crates that read them.

/// The bus-wide variables, each compiled-in backend's, the event store's, the sagas' and the personal-data key store's.
pub fn project_variables() -> Vec<&'static str> {
    let mut all = event_bus_brokers::registry::variables();
    all.extend(event_store::VARIABLES);
    all.extend(event_bus_sagas::VARIABLES);
    all.extend(personal_data::VARIABLES);
    all
}

/// Variable names in the first column of the README's tables.
pub fn readme_variables() -> std::collections::BTreeSet<String> {
    include_str!("../../README.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .collect()
}
