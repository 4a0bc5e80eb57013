//! A RabbitMQ node of the test's own (its own node name, ports and data folder), so a test
//! can restart it without touching anybody else's server. Started with `rabbitmq-server
//! -detached` and stopped by the PID it writes. [`RabbitMqServer::start_tls`] adds a TLS
//! listener with certificates of the test's own, and a virtual host with an administrator and
//! a worker who may not configure anything.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a node may take to boot or to stop.
const STARTUP: Duration = Duration::from_secs(90);

/// The virtual host [`RabbitMqServer::start_tls`] makes.
pub const VHOST: &str = "least-privilege";
/// The user with every permission on [`VHOST`]: what `eventbus setup` runs as.
pub const ADMIN_USER: &str = "bus-admin";
/// [`ADMIN_USER`]'s password.
pub const ADMIN_PASSWORD: &str = "admin-secret-7e1d";
/// The user the bus runs as under least privilege.
pub const WORKER_USER: &str = "bus-worker";
/// [`WORKER_USER`]'s password.
pub const WORKER_PASSWORD: &str = "worker-secret-2c9b";
/// [`WORKER_USER`]'s permissions on [`VHOST`] (configure, write, read): no `configure`, so
/// no exchange or queue declared, bound or deleted.
pub const WORKER_PERMISSIONS: [&str; 3] = ["", ".*", ".*"];

/// A running RabbitMQ node, stopped by PID when dropped.
pub struct RabbitMqServer {
    port: u16,
    dist_port: u16,
    tls_port: Option<u16>,
    dir: TempDir,
    pid: Mutex<Option<u32>>,
}

impl RabbitMqServer {
    /// Starts a node listening on a free port of 127.0.0.1, its data in a new temporary folder.
    pub fn start() -> io::Result<Self> {
        Self::start_with(false)
    }

    /// Starts a node as [`start`](Self::start) does that also speaks AMQP over TLS on a free
    /// port, with a server certificate for 127.0.0.1 signed by a CA of its own
    /// ([`ca_file`](Self::ca_file)), and the virtual host [`VHOST`] with [`ADMIN_USER`]
    /// (every permission) and [`WORKER_USER`] ([`WORKER_PERMISSIONS`]), made with `rabbitmqctl`.
    pub fn start_tls() -> io::Result<Self> {
        let server = Self::start_with(true)?;
        // An open port comes before the node accepts administration.
        server.ctl(&["await_startup"])?;
        server.ctl(&["add_vhost", VHOST])?;
        for (user, password, [configure, write, read]) in [
            (ADMIN_USER, ADMIN_PASSWORD, [".*", ".*", ".*"]),
            (WORKER_USER, WORKER_PASSWORD, WORKER_PERMISSIONS),
        ] {
            server.ctl(&["add_user", user, password])?;
            server.ctl(&["set_permissions", "-p", VHOST, user, configure, write, read])?;
        }
        Ok(server)
    }

    fn start_with(tls: bool) -> io::Result<Self> {
        let port = free_port()?;
        let dist_port = free_port()?;
        let tls_port = if tls { Some(free_port()?) } else { None };
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for folder in ["mnesia", "log", "run"] {
            std::fs::create_dir_all(root.join(folder))?;
        }
        let mut config = format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n");
        if let Some(tls_port) = tls_port {
            let files = crate::certificates::write(root)?;
            for file in [&files.ca, &files.cert, &files.key] {
                readable_by_the_rabbitmq_user(file)?;
            }
            config.push_str(&format!(
                "listeners.ssl.local = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                files.ca.display(),
                files.cert.display(),
                files.key.display(),
            ));
        }
        std::fs::write(root.join("rabbitmq.conf"), config)?;
        std::fs::write(root.join("enabled_plugins"), "[].\n")?;
        open_to_the_rabbitmq_user(root)?;
        let server = Self {
            port,
            dist_port,
            tls_port,
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

    /// The `amqps://` URL of [`VHOST`] on a TLS node for `user` with `password`.
    pub fn tls_url(&self, user: &str, password: &str) -> String {
        let port = self.tls_port.expect("a node started with start_tls");
        format!("amqps://{user}:{password}@127.0.0.1:{port}/{VHOST}")
    }

    /// The PEM file of the CA that signed a TLS node's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Runs `rabbitmqctl` with `args` against this node.
    pub fn ctl(&self, args: &[&str]) -> io::Result<()> {
        let output = self.node_command("rabbitmqctl").args(args).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "rabbitmqctl {} exited with {}: {}",
                args.first().unwrap_or(&""),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// `program` with the environment that names this node and its files.
    fn node_command(&self, program: &str) -> Command {
        let root = self.dir.path();
        let mut command = Command::new(program);
        command
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
            .env("RABBITMQ_PID_FILE", root.join("run").join("rabbitmq.pid"));
        command
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
        let status = self
            .node_command("rabbitmq-server")
            .arg("-detached")
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
        for port in std::iter::once(self.port).chain(self.tls_port) {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                wait_or_fail(deadline, "the RabbitMQ node did not open its AMQP port")?;
            }
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

/// The node runs as the `rabbitmq` user, which must read its certificate files.
fn readable_by_the_rabbitmq_user(file: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))
}

/// The node runs as the `rabbitmq` user, which must write the folder.
fn open_to_the_rabbitmq_user(root: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in ["", "mnesia", "log", "run"] {
        std::fs::set_permissions(root.join(entry), std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}
