fn main() {
    // Before any thread starts: keeps Mesa's Vulkan layer from printing display errors (see there).
    spatial_gpu::gpu::disable_mesa_device_select_layer();
    let cli = spatial_gpu::cli::parse();
    match spatial_gpu::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
