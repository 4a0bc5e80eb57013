//! The PostgreSQL key store against the local server: keys wrapped at rest, forgetting that
//! holds across processes (a second store on the same table), and a master-key rotation.

use event_store_postgres::Schema;
use personal_data::{KeyState, KeyStore, MasterKey, MasterKeys, PgKeyStore};
use sqlx::PgPool;

const OLD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NEW: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn master(text: &str) -> MasterKey {
    MasterKey::from_base64(text, "test").unwrap()
}

async fn pool_and_schema() -> (PgPool, Schema) {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let pool = PgPool::connect(&url).await.expect("PostgreSQL");
    let schema = Schema::new(&format!("evbus_t_{}", uuid::Uuid::now_v7().simple())).unwrap();
    (pool, schema)
}

async fn drop_schema(pool: &PgPool, schema: &Schema) {
    sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", schema.name()))
        .execute(pool)
        .await
        .unwrap();
}

fn same_key(a: &KeyState, b: &KeyState) -> bool {
    let (KeyState::Live(a), KeyState::Live(b)) = (a, b) else {
        return false;
    };
    let sealed = a.encrypt(b"probe", b"ctx");
    b.decrypt(&sealed, b"ctx").is_ok()
}

#[tokio::test]
async fn keys_persist_wrapped_and_forgetting_is_final_for_every_process() {
    let (pool, schema) = pool_and_schema().await;
    let one = PgKeyStore::connect(pool.clone(), &schema, MasterKeys::new(master(NEW)))
        .await
        .unwrap();
    let two = PgKeyStore::connect(pool.clone(), &schema, MasterKeys::new(master(NEW)))
        .await
        .unwrap();
    assert!(matches!(one.key("u-1").await.unwrap(), KeyState::Absent));
    let made = one.key_or_create("u-1").await.unwrap();
    assert!(same_key(&made, &two.key("u-1").await.unwrap()));
    assert!(same_key(&made, &two.key_or_create("u-1").await.unwrap()));

    let wrapped: Vec<u8> = sqlx::query_scalar(&format!(
        "SELECT wrapped_key FROM {} WHERE subject = 'u-1'",
        schema.table("personal_data_keys")
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(wrapped.len(), 12 + 32 + 16, "nonce, wrapped key, tag");

    let wrong = PgKeyStore::connect(pool.clone(), &schema, MasterKeys::new(master(OLD)))
        .await
        .unwrap();
    let error = wrong.key("u-1").await.unwrap_err().to_string();
    assert!(error.contains("unwraps under neither"), "{error}");
    assert!(!error.contains(NEW) && !error.contains(OLD));

    assert!(two.forget("u-1").await.unwrap());
    assert!(
        !two.forget("u-1").await.unwrap(),
        "forgetting again holds nothing"
    );
    assert!(matches!(one.key("u-1").await.unwrap(), KeyState::Forgotten));
    assert!(matches!(
        one.key_or_create("u-1").await.unwrap(),
        KeyState::Forgotten
    ));
    assert!(!one.forget("never-seen").await.unwrap());
    assert!(matches!(
        one.key_or_create("never-seen").await.unwrap(),
        KeyState::Forgotten
    ));
    drop_schema(&pool, &schema).await;
}

#[tokio::test]
async fn rotating_the_master_key_rewraps_every_key() {
    let (pool, schema) = pool_and_schema().await;
    let old = PgKeyStore::connect(pool.clone(), &schema, MasterKeys::new(master(OLD)))
        .await
        .unwrap();
    let a = old.key_or_create("u-a").await.unwrap();
    let b = old.key_or_create("u-b").await.unwrap();

    let rotating = PgKeyStore::connect(
        pool.clone(),
        &schema,
        MasterKeys::new(master(NEW)).with_previous(master(OLD)),
    )
    .await
    .unwrap();
    assert!(same_key(&a, &rotating.key("u-a").await.unwrap()));
    assert_eq!(rotating.rewrap().await.unwrap(), 2);
    assert_eq!(rotating.rewrap().await.unwrap(), 0);

    let new_only = PgKeyStore::connect(pool.clone(), &schema, MasterKeys::new(master(NEW)))
        .await
        .unwrap();
    assert!(same_key(&a, &new_only.key("u-a").await.unwrap()));
    assert!(same_key(&b, &new_only.key("u-b").await.unwrap()));
    assert!(
        old.key("u-a").await.is_err(),
        "the old master key no longer unwraps"
    );
    drop_schema(&pool, &schema).await;
}
