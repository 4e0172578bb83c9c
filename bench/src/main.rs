//! `cargo run -p bench --release -- <suite>|all`: see the crate documentation.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    bench::cli::Cli::parse().run()
}
