//! The Prometheus exporter started from `EVENT_BUS_METRICS_PORT`, scraped over HTTP on loopback.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::telemetry::prometheus::start_exporter_from_settings;
use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Recorder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(address)
        .await
        .expect("connect to the exporter");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_serves_the_bus_metrics_on_loopback() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = port.to_string();
    let settings = BusSettings::from_vars([("EVENT_BUS_METRICS_PORT", port.as_str())]).unwrap();
    let address = start_exporter_from_settings(&settings)
        .expect("exporter starts")
        .expect("a port is set");
    assert!(address.ip().is_loopback(), "bound to {address}");
    assert_eq!(
        start_exporter_from_settings(&BusSettings::default()).unwrap(),
        None,
        "no port, no exporter"
    );

    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), settings);
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("user.registered", "welcome"),
        recorder.clone(),
    )
    .await
    .unwrap();
    let event = EventEnvelope::builder("user.registered", serde_json::json!({})).build();
    bus.publish(&event).await.unwrap();
    recorder.wait_for(1, Duration::from_secs(10)).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let response = scrape(address).await;
        if response.contains("event_bus_handled_total") || tokio::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for line in [
        r#"event_bus_published_total{backend="memory",event_type="user.registered"} 1"#,
        r#"event_bus_handled_total{backend="memory",event_type="user.registered"} 1"#,
        r#"event_bus_publish_duration_seconds_bucket{backend="memory",event_type="user.registered",le="+Inf"} 1"#,
        r#"event_bus_handle_duration_seconds_count{backend="memory",event_type="user.registered"} 1"#,
    ] {
        assert!(body.contains(line), "missing `{line}` in:\n{body}");
    }
    bus.shutdown().await.unwrap();
}
