//! `heist attack …`: one subcommand per attack.

use super::exit::CliResult;

pub mod adversarial;

/// Attack the encrypted inference service.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    #[command(subcommand)]
    command: AttackCommand,
}

/// The attacks `heist attack` runs.
#[derive(Debug, clap::Subcommand)]
pub enum AttackCommand {
    /// Adversarial examples injected before encryption (paper Table 4).
    Adversarial(adversarial::AdversarialArgs),
}

/// Runs `heist attack <attack>`.
///
/// # Errors
/// As the chosen attack.
pub fn run(args: AttackArgs) -> CliResult {
    match args.command {
        AttackCommand::Adversarial(a) => adversarial::run(a),
    }
}
