//! `fake-kube`: serves a fake cluster until SIGTERM/SIGINT, for the benchmark and the demo.
//!
//! `fake-kube --kubeconfig OUT [--nodes N --template NODE.json] [--load FILE]...`
//! prints `ready <url>` once it serves.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use fake_kube::FakeKube;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut nodes, mut template, mut loads) = (None, 0usize, None, Vec::new());
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--nodes" => nodes = value()?.parse().context("--nodes takes a number")?,
            "--template" => template = Some(PathBuf::from(value()?)),
            "--load" => loads.push(PathBuf::from(value()?)),
            other => bail!(
                "unknown argument {other:?}; usage: fake-kube --kubeconfig OUT [--nodes N --template NODE.json] [--load FILE]..."
            ),
        }
    }
    let kubeconfig = kubeconfig.context("--kubeconfig OUT is required")?;
    let kube = FakeKube::start().await?;
    if nodes > 0 {
        let path = template.context("--nodes needs --template (a Node or NodeList JSON file)")?;
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let node = if doc["kind"] == "NodeList" {
            doc["items"][0].clone()
        } else {
            doc
        };
        for n in fake_kube::nodes_from_template(&node, nodes, true) {
            kube.apply(n)?;
        }
    }
    for file in &loads {
        kube.load_file(file)?;
    }
    kube.write_kubeconfig(&kubeconfig)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", kube.url())?;
    out.flush()?;
    drop(out);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
