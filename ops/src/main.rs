//! `keyless`: the operator command line (see the `ops` crate).

#[tokio::main]
async fn main() {
    let code = ops::cli::run(
        std::env::args_os(),
        &shared_auth::ProcessEnv,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    std::process::exit(code);
}
