//! The `heist` command line: clap argument types and the glue that turns parsed flags into
//! calls of the library, tables on stdout and JSON files. Nothing in the library imports
//! this module.

use clap::{Parser, Subcommand};

pub mod attack;
pub mod bench;
pub mod certs;
pub mod data;
pub mod demo;
pub mod eval;
pub mod exit;
pub mod mitm;
pub mod options;
pub mod progress;
pub mod reproduce;
pub mod service;
pub mod train;

/// heist: is homomorphic-encryption-based deep learning secure enough?
#[derive(Parser)]
#[command(name = "heist", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch, inspect and verify the data sets.
    Data(data::DataArgs),
    /// Train one of the paper's networks.
    Train(train::TrainArgs),
    /// Evaluate a model file on a data set's test images.
    Eval(eval::EvalArgs),
    /// Run a role of the three-party inference service (compute server or trusted party).
    Serve(service::ServeArgs),
    /// Classify PNG images with a running trusted party.
    Query(service::QueryArgs),
    /// Time heist's building blocks (NTT, …) without criterion.
    Bench(bench::BenchArgs),
    /// Train the paper's network on the embedded data (or reuse a cached model) and
    /// classify encrypted test images through the three-party service.
    Demo(demo::DemoArgs),
    /// Attack the encrypted inference service.
    Attack(attack::AttackArgs),
    /// Relay between client and trusted party, rewriting each image (attack 1's man in
    /// the middle).
    Mitm(mitm::MitmArgs),
    /// Reproduce the paper's tables and figures, and what goes beyond them, through the
    /// encrypted service: report.md, results.json and PNG figures.
    Reproduce(reproduce::ReproduceArgs),
    /// Write a test CA and certificates for mutual TLS on the client link (testing only).
    Certs(certs::CertsArgs),
}

/// Parses the process's arguments, runs the subcommand, and turns its result into the
/// exit code (0 success, 1 failure, 2 bad input), printing any error to stderr.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    exit::finish(match cli.command {
        Command::Data(args) => data::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Serve(args) => service::serve(args),
        Command::Query(args) => service::query(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::demo(args),
        Command::Attack(args) => attack::run(args),
        Command::Mitm(args) => mitm::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Certs(args) => certs::run(args),
    })
}
