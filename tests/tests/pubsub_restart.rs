//! A subscriber survives a restart of the Pub/Sub emulator: the emulator keeps nothing across
//! it, so the subscription's pull finds its subscription gone and creates it again, and events
//! published from then on arrive. Runs an emulator of its own on a free port
//! (PUBSUB_EMULATOR_BIN, default the Google Cloud SDK's), stopped when the test ends.
#![cfg(feature = "pubsub")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_bus_core::{BusSettings, EventEnvelope, Recorder};

const BIN: &str = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";
const TIMEOUT: Duration = Duration::from_secs(60);

/// An emulator process of this test, killed when dropped.
struct Emulator {
    port: u16,
    data: tempfile::TempDir,
    child: Option<Child>,
}

impl Emulator {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut emulator = Self {
            port,
            data: tempfile::tempdir().expect("data folder"),
            child: None,
        };
        emulator.spawn();
        emulator
    }

    fn spawn(&mut self) {
        let bin = std::env::var("PUBSUB_EMULATOR_BIN").unwrap_or_else(|_| BIN.to_owned());
        let child = Command::new(&bin)
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--data-dir={}", self.data.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the Pub/Sub emulator at {bin} does not start: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        while !self.ready() {
            assert!(Instant::now() < deadline, "the emulator never answered Ok");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let (mut answer, mut chunk) = (Vec::new(), [0_u8; 256]);
        while let Ok(read) = stream.read(&mut chunk) {
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..read]);
            if String::from_utf8_lossy(&answer).contains("\r\n\r\nOk") {
                return true;
            }
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_recreates_its_subscription_after_an_emulator_restart() {
    let mut emulator = Emulator::start();
    let host = emulator.host();
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", host.as_str()),
        ("EVENT_BUS_TOPIC_PREFIX", "restart"),
    ])
    .expect("settings");
    let bus = event_bus_brokers::connect(settings).await.expect("connect");
    let recorder = Recorder::new();
    let config = bus.subscription("restart.event", "g");
    bus.subscribe(config.clone(), recorder.clone())
        .await
        .expect("subscribe");
    let event =
        |n: u32| EventEnvelope::builder("restart.event", serde_json::json!({"n": n})).build();
    let before = event(1);
    bus.publish(&before).await.expect("publish");
    recorder.wait_for(1, TIMEOUT).await.expect("delivered");

    emulator.stop();
    let refused = bus.publish(&event(2)).await;
    let error = refused.expect_err("nothing to publish to").to_string();
    assert!(error.starts_with("pubsub backend: "), "{error}");
    emulator.spawn();

    // Everything is gone with the old emulator; the subscriber creates its subscription again.
    let subscription = bus_client(&host).await.subscription(&config.consumer_group);
    let deadline = Instant::now() + TIMEOUT;
    while !subscription.exists(None).await.unwrap_or(false) {
        assert!(
            Instant::now() < deadline,
            "the subscription was not created again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = event(3);
    bus.publish(&after)
        .await
        .expect("publish after the restart");
    let received = recorder
        .wait_for(2, TIMEOUT)
        .await
        .expect("the event published after the restart arrives");
    assert_eq!(received, vec![before, after]);
    bus.shutdown().await.expect("shutdown");
}

async fn bus_client(host: &str) -> gcloud_pubsub::client::Client {
    let options = event_bus_brokers::pubsub::PubSubOptions::from_settings(
        &BusSettings::from_vars([("PUBSUB_EMULATOR_HOST", host)]).expect("settings"),
    )
    .expect("pubsub settings");
    event_bus_brokers::pubsub::PubSubBroker::connect(options)
        .await
        .expect("connect")
        .client()
        .clone()
}
