//! `heist attack …`: one subcommand per attack.

pub mod reconstruction;

use super::exit::CliResult;

/// Attack the encrypted inference service.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    #[command(subcommand)]
    command: AttackCommand,
}

/// The attacks `heist attack` runs.
#[derive(Debug, clap::Subcommand)]
pub enum AttackCommand {
    /// Attack 2: reconstruct private training images from released scores (Table 5, Fig. 4).
    Reconstruction(reconstruction::ReconstructionArgs),
}

/// Runs `heist attack <attack>`.
///
/// # Errors
/// As the chosen attack.
pub fn run(args: AttackArgs) -> CliResult {
    match args.command {
        AttackCommand::Reconstruction(args) => reconstruction::run_reconstruction(args),
    }
}
