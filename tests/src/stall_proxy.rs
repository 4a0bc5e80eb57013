//! A TCP proxy in front of a test server that can go silent: once stalled, it keeps every
//! connection open but passes no bytes either way, and holds new connections unanswered, as a
//! hung server or a dropped network path does (no reset, no close, nothing to read).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy on a loopback port; it stops accepting when dropped.
pub struct StallProxy {
    port: u16,
    stalled: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl StallProxy {
    /// Forwards connections on a free loopback port to 127.0.0.1:`upstream`.
    pub async fn start(upstream: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (stalled, watching) = watch::channel(false);
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, upstream, watching.clone()));
            }
        });
        Ok(Self {
            port,
            stalled,
            accepting,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on no byte passes, until [`resume`](Self::resume).
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Bytes pass again, those held first.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn forward(client: TcpStream, upstream: u16, mut stalled: watch::Receiver<bool>) {
    if stalled.wait_for(|stalled| !stalled).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        copy(client_read, server_write, stalled.clone()),
        copy(server_read, client_write, stalled),
    );
}

/// Copies `from` to `to`, holding each chunk while the proxy is stalled.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        if stalled.wait_for(|stalled| !stalled).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if stalled.wait_for(|stalled| !stalled).await.is_err()
            || to.write_all(&buffer[..read]).await.is_err()
        {
            return;
        }
    }
}
