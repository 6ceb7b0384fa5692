//! The `heist` command line.
use clap::{Parser, Subcommand};

/// heist: is homomorphic-encryption-based deep learning secure enough?
#[derive(Parser)]
#[command(name = "heist", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch, inspect and verify the data sets.
    Data(heist::data::cli::DataArgs),
    /// Train one of the paper's networks.
    Train(heist::train::TrainArgs),
    /// Evaluate a model file on a data set's test images.
    Eval(heist::model::eval::EvalArgs),
    /// Run a role of the three-party inference service (compute server or trusted party).
    Serve(heist::service::cli::ServeArgs),
    /// Classify PNG images with a running trusted party.
    Query(heist::service::cli::QueryArgs),
    /// Time heist's building blocks (NTT, …) without criterion.
    Bench(heist::bench::BenchArgs),
    /// Train the paper's network on the embedded data (or reuse a cached model) and
    /// classify encrypted test images through the three-party service.
    Demo(heist::encrypted::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Data(args) => heist::exit::finish(heist::data::cli::run(args)),
        Command::Train(args) => heist::exit::finish(heist::train::run(args)),
        Command::Eval(args) => heist::exit::finish(heist::model::eval::run(args)),
        Command::Serve(args) => heist::exit::finish(heist::service::cli::serve(args)),
        Command::Query(args) => heist::exit::finish(heist::service::cli::query(args)),
        Command::Bench(args) => heist::exit::finish(heist::bench::run(args)),
        Command::Demo(args) => heist::exit::finish(heist::encrypted::demo(args)),
    }
}
