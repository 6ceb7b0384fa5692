//! The `heist` command line.

fn main() -> std::process::ExitCode {
    heist::cli::main()
}
