//! `veritrail serve` and `veritrail reindex`: the service's process around
//! [`veritrail_server::Server`] (configuration, signals, the first-start messages).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use veritrail_server::{Config, Server};

/// Where the configuration comes from: a file, then the environment, then these flags,
/// each over the one before.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: Option<PathBuf>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: Option<PathBuf>,
}

impl Settings {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        Ok(config)
    }
}

/// Runs the service until SIGINT or SIGTERM, then shuts down gracefully.
pub(crate) fn serve(settings: &Settings, demo: bool) -> anyhow::Result<ExitCode> {
    let config = settings.load()?;
    // Connections and open tenant files are bounded by the configuration, not by a soft
    // limit of 1,024 descriptors that many systems start processes with.
    if let Err(err) = veritrail_server::limits::raise_open_files_limit() {
        tracing::warn!(%err, "cannot raise the open-files limit");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("veritrail-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr().context("no local address")?;
        let data_dir = config.data_dir.clone();
        let mut server = Server::open(config)?;
        let mut out = String::new();
        if let Some(admin_key) = server.take_new_admin_key() {
            out.push_str(&format!(
                "\nFirst start: created the data directory {dir}.\n\
                 Server-admin key (shown only now; it is stored hashed, so keep it safe):\n\n    {admin_key}\n\n\
                 Create a tenant with it:\n\n    curl -s -X POST http://{address}/api/v1/tenants \\\n      -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' \\\n      -d '{{\"id\": \"acme\"}}'\n",
                dir = data_dir.display(),
            ));
        }
        if demo {
            let keys = veritrail_server::demo::set_up(server.state())
                .await
                .map_err(|err| anyhow::anyhow!("cannot set up the demo tenant: {}", err.message))?;
            match keys {
                Some(keys) => out.push_str(&format!(
                    "\nDemo tenant `{tenant}` created with {n} sample events.\n\
                     Viewer key (reads):      {viewer}\n\
                     Publisher key (writes):  {publisher}\n\n\
                     Activity page: http://{address}/activity  (sign in with the viewer key)\n\n\
                     Try:\n\n    curl -s 'http://{address}/api/v1/events?limit=5' -H 'Authorization: Bearer {viewer}'\n",
                    tenant = veritrail_server::demo::TENANT,
                    n = keys.events,
                    viewer = keys.viewer,
                    publisher = keys.publisher,
                )),
                None => out.push_str(&format!(
                    "\nDemo tenant `{}` exists already (its keys were shown when it was made).\n",
                    veritrail_server::demo::TENANT
                )),
            }
        }
        out.push_str(&format!(
            "\nveritrail is listening on http://{address}  (API docs: http://{address}/api/audit/swagger/)\n"
        ));
        let _ = writeln!(std::io::stdout().lock(), "{out}");
        server.run(listener, shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Rebuilds the search index from the ledger.
pub(crate) fn reindex(settings: &Settings) -> anyhow::Result<ExitCode> {
    let config = settings.load()?;
    let total = veritrail_server::reindex(&config, &mut |_| {})?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "search index rebuilt: {total} records indexed"
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
