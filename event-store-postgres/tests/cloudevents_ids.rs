//! CloudEvents ids are any string: a store made when event ids were UUID columns takes text
//! columns on connect, keeps reading the events it holds (in the old envelope format), and
//! stores events with ids like `order-123`.

mod common;

use event_bus_core::EventEnvelope;
use event_store::store::{EventStore, ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;

/// An event as the bus stored it before: every attribute, an empty source, a UUID id.
const OLD_ENVELOPE: &str = r#"{"specversion":"1.0","id":"01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","type":"order.placed","source":"","subject":"o-1","aggregatetype":"order","aggregateversion":1,"schemaversion":1,"time":"2024-11-30T15:27:39.123456789Z","correlationid":"01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","idempotencykey":"order.placed::01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","data":{"total":12},"datacontenttype":"application/json"}"#;

#[tokio::test]
async fn a_store_of_uuid_ids_takes_any_cloudevents_id() {
    let store = common::store(0).await;
    let schema = store.schema().name().to_owned();
    let stream = StreamId::new("order", "o-1");
    let first = EventEnvelope::builder("order.placed", serde_json::json!({}))
        .id("01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f")
        .build();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![first])
        .await
        .unwrap();
    // Make the schema what an earlier version made: UUID id columns, the old envelope format.
    for table in ["events", "events_archive", "parked_dead_letters"] {
        sqlx::query(&format!(
            "ALTER TABLE \"{schema}\".{table} ALTER COLUMN event_id TYPE uuid USING event_id::uuid"
        ))
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query(&format!(
        "UPDATE \"{schema}\".events SET envelope = $1::jsonb"
    ))
    .bind(OLD_ENVELOPE)
    .execute(store.pool())
    .await
    .unwrap();

    let store = PgEventStore::connect(&common::database_url(), &schema)
        .await
        .expect("connecting migrates the id columns");
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns
         WHERE table_schema = $1 AND column_name = 'event_id' ORDER BY table_name",
    )
    .bind(&schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(kinds, ["text", "text", "text"]);

    let old = store.read_stream(&stream, 1, None).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].envelope.id, "01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f");
    assert_eq!(old[0].envelope.payload["total"], 12);

    let foreign: EventEnvelope = serde_json::from_str(
        r#"{"specversion":"1.0","id":"order-123","source":"/orders","type":"order.paid","tenantid":"acme","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#,
    )
    .unwrap();
    store
        .append(&stream, ExpectedVersion::Exact(1), vec![foreign])
        .await
        .expect("an id that is no UUID is stored");
    let read = store.read_stream(&stream, 2, None).await.unwrap();
    assert_eq!(read[0].envelope.id, "order-123");
    assert_eq!(
        read[0].envelope.extensions["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
}
