//! Upcasting on read from PostgreSQL: old payloads come back in the current schema.

mod common;

use event_bus_core::EventEnvelope;
use event_store::store::{
    EventFilter, EventStore, ExpectedVersion, StoreError, StreamId, Upcasters,
};

#[tokio::test]
async fn old_schema_versions_are_upcast_when_read() {
    let store = common::store(0).await;
    let old = EventEnvelope::builder(
        "user.renamed",
        serde_json::json!({ "name": "Ada Lovelace" }),
    )
    .schema_version(1)
    .build();
    let stream = StreamId::new("user", "u-1");
    store
        .append(&stream, ExpectedVersion::NoStream, vec![old])
        .await
        .unwrap();

    let upcasters = Upcasters::new()
        .register("user.renamed", 1, |mut payload| {
            let name = payload["name"].as_str().ok_or("no name")?.to_owned();
            let (first, last) = name.split_once(' ').ok_or("no space in the name")?;
            payload["first_name"] = first.into();
            payload["last_name"] = last.into();
            Ok(payload)
        })
        .register("user.renamed", 2, |mut payload| {
            payload
                .as_object_mut()
                .ok_or("not an object")?
                .remove("name");
            Ok(payload)
        });
    let reader = store.clone().with_upcasters(upcasters.clone());
    let read = reader.read_stream(&stream, 1, None).await.unwrap();
    assert_eq!(read[0].envelope.schema_version, 3);
    assert_eq!(
        read[0].envelope.payload,
        serde_json::json!({ "first_name": "Ada", "last_name": "Lovelace" })
    );
    let all = reader.read_all(&EventFilter::all(), 0, 10).await.unwrap();
    assert_eq!(all[0].envelope.payload, read[0].envelope.payload);
    // Stored data is untouched.
    let raw = store.read_stream(&stream, 1, None).await.unwrap();
    assert_eq!(raw[0].envelope.schema_version, 1);

    let bad =
        EventEnvelope::builder("user.renamed", serde_json::json!({ "name": "Plato" })).build();
    store
        .append(&stream, ExpectedVersion::Exact(1), vec![bad])
        .await
        .unwrap();
    let error = reader.read_stream(&stream, 2, None).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Upcast(ref e) if e.from_version == 1 && e.reason == "no space in the name"),
        "{error}"
    );
}
