//! The shopify-ingest job's process: `shopify-ingest [--backfill FROM..TO]`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shopify_ingest::main_with(std::env::args().skip(1).collect()).await
}
