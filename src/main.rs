use clap::Parser;

fn main() {
    let cli = spatial_gpu::cli::Cli::parse();
    match spatial_gpu::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
