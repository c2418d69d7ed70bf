//! The ceiling server: hyper + HMAC verification, no parse, no store.
//! `ceiling --listen 127.0.0.1:8082`; prints `ceiling listening on http://ADDR` when ready.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use hookbridge_bench::SECRET;

/// Answers signed GitHub deliveries with 202 after checking the signature.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// The secret deliveries are signed with.
    #[arg(long, default_value = SECRET)]
    secret: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            let _ = writeln!(std::io::stdout(), "ceiling listening on http://{addr}");
        }
        let secret = args.secret.into_bytes().into();
        match hookbridge_bench::ceiling::serve(listener, secret).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
