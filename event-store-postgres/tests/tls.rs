//! The store, its outbox, its parked dead letters and the dedup store over TLS (`sslmode=require`; the
//! local server has TLS on, with Debian's snakeoil certificate), as a user with a password
//! that the test creates; the server says the connections are encrypted, and the password shows
//! in no `Debug` output of the settings.

mod common;

use event_bus_core::dead_letter::{DeadLetter, DeadLetterFilter, ParkedStore, headers};
use event_bus_core::{BusSettings, EventEnvelope};
use event_store::StoreSettings;
use event_store::outbox::Outbox;
use event_store::store::{EventStore, ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;

/// A login role with a password, allowed to create its schema; dropped with what it owns.
struct Role {
    admin: PgEventStore,
    name: String,
    password: String,
}

impl Role {
    async fn create() -> Self {
        let admin = common::store(0).await;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let role = Self {
            admin,
            name: format!("evbus_tls_{id}"),
            password: format!("pw-{id}"),
        };
        for statement in [
            format!(
                "CREATE ROLE {} LOGIN PASSWORD '{}'",
                role.name, role.password
            ),
            format!("GRANT CREATE ON DATABASE postgres TO {}", role.name),
        ] {
            sqlx::query(&statement)
                .execute(role.admin.pool())
                .await
                .unwrap();
        }
        role
    }

    fn url(&self) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:5432/postgres?sslmode=require",
            self.name, self.password
        )
    }

    async fn drop_all(self) {
        for statement in [
            format!("DROP OWNED BY {} CASCADE", self.name),
            format!("DROP ROLE {}", self.name),
        ] {
            sqlx::query(&statement)
                .execute(self.admin.pool())
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn the_store_and_parked_dead_letters_work_over_tls_as_a_password_user() {
    let role = Role::create().await;
    let url = role.url();
    let store = PgEventStore::connect(&url, &common::unique_schema())
        .await
        .expect("connect over TLS");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted, "the connection is not encrypted");

    let event = EventEnvelope::builder("user.registered", serde_json::json!({ "n": 1 })).build();
    let stream = StreamId::new("user", "u-1");
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event.clone()])
        .await
        .unwrap();
    let read = store.read_stream(&stream, 1, None).await.unwrap();
    assert_eq!(read[0].envelope.id, event.id);

    let parked = store.parked_store();
    let message = event
        .to_message()
        .unwrap()
        .with_header(headers::REASON, "permanent-failure")
        .with_header(headers::ORIGINAL_TOPIC, "events-user-registered");
    parked
        .park(&DeadLetter::from_message(message))
        .await
        .unwrap();
    let listed = parked.list(&DeadLetterFilter::default(), 10).await.unwrap();
    assert_eq!(listed.len(), 1);

    let next = EventEnvelope::builder("user.renamed", serde_json::json!({ "n": 2 })).build();
    store
        .append_and_enqueue(&stream, ExpectedVersion::Exact(1), vec![next.clone()])
        .await
        .unwrap();
    let pending = store.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1, "the outbox holds the appended event");
    assert_eq!(pending[0].envelope.id, next.id);

    let settings = StoreSettings::from_settings(
        &BusSettings::from_vars([("DATABASE_URL", url.as_str())]).unwrap(),
    )
    .unwrap();
    assert!(!format!("{settings:?}").contains(&role.password));
    drop((store, parked));
    role.drop_all().await;
}
