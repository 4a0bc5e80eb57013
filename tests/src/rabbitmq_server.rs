//! A RabbitMQ node of the test's own (its own node name, ports and data folder), so a test
//! can restart it without touching anybody else's server. Started with `rabbitmq-server
//! -detached` and stopped by the PID it writes.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a node may take to boot or to stop.
const STARTUP: Duration = Duration::from_secs(90);

/// A running RabbitMQ node, stopped by PID when dropped.
pub struct RabbitMqServer {
    port: u16,
    dist_port: u16,
    dir: TempDir,
    pid: Mutex<Option<u32>>,
}

impl RabbitMqServer {
    /// Starts a node listening on a free port of 127.0.0.1, its data in a new temporary folder.
    pub fn start() -> io::Result<Self> {
        let port = free_port()?;
        let dist_port = free_port()?;
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for folder in ["mnesia", "log", "run"] {
            std::fs::create_dir_all(root.join(folder))?;
        }
        std::fs::write(
            root.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )?;
        std::fs::write(root.join("enabled_plugins"), "[].\n")?;
        open_to_the_rabbitmq_user(root)?;
        let server = Self {
            port,
            dist_port,
            dir,
            pid: Mutex::new(None),
        };
        server.boot()?;
        Ok(server)
    }

    /// The AMQP URL clients connect to.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the node and starts it again on the same port and data.
    pub fn restart(&self) -> io::Result<()> {
        self.stop()?;
        self.boot()
    }

    /// Starts the stopped node again on the same port and data.
    pub fn boot(&self) -> io::Result<()> {
        let root = self.dir.path();
        let pid_file = root.join("run").join("rabbitmq.pid");
        let _ = std::fs::remove_file(&pid_file);
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env(
                "RABBITMQ_NODENAME",
                format!("evbus-test-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", root.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                root.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", root.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", root.join("log"))
            .env("RABBITMQ_PID_FILE", &pid_file)
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "rabbitmq-server exited with {status}"
            )));
        }
        let deadline = Instant::now() + STARTUP;
        let pid = loop {
            if let Some(pid) = read_pid(&pid_file) {
                break pid;
            }
            wait_or_fail(deadline, "rabbitmq-server wrote no PID file")?;
        };
        *self
            .pid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(pid);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            wait_or_fail(deadline, "the RabbitMQ node did not open its AMQP port")?;
        }
        Ok(())
    }

    /// Stops the node (SIGTERM, by PID) and waits until it is gone.
    pub fn stop(&self) -> io::Result<()> {
        let pid = self
            .pid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(pid) = pid else { return Ok(()) };
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        let deadline = Instant::now() + STARTUP;
        while Path::new(&format!("/proc/{pid}")).exists() {
            wait_or_fail(deadline, "the RabbitMQ node did not stop")?;
        }
        Ok(())
    }
}

impl Drop for RabbitMqServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn read_pid(file: &PathBuf) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn wait_or_fail(deadline: Instant, what: &str) -> io::Result<()> {
    if Instant::now() > deadline {
        return Err(io::Error::new(io::ErrorKind::TimedOut, what.to_owned()));
    }
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// The node runs as the `rabbitmq` user, which must write the folder.
fn open_to_the_rabbitmq_user(root: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in ["", "mnesia", "log", "run"] {
        std::fs::set_permissions(root.join(entry), std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}
