//! A private schema per test in the PostgreSQL server on 127.0.0.1:5432.

use event_bus_sagas::PgSagaRepository;

/// The test server (trust auth, user postgres).
pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A schema with a random name, dropped when the value is dropped.
pub struct TestSchema {
    /// The schema name.
    pub name: String,
}

impl TestSchema {
    /// A fresh schema name; the repository creates it.
    pub fn new() -> Self {
        Self {
            name: format!("saga_test_{}", uuid::Uuid::now_v7().simple()),
        }
    }

    /// A repository in this schema.
    pub async fn repository(&self) -> PgSagaRepository {
        PgSagaRepository::connect(DATABASE_URL, &self.name)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/services.sh ensure_postgres)")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, on a thread of its own: the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(DATABASE_URL).await {
                    let _ = sqlx::query(&format!(r#"DROP SCHEMA IF EXISTS "{name}" CASCADE"#))
                        .execute(&pool)
                        .await;
                }
            });
        })
        .join();
    }
}
