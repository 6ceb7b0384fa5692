//! `heist attack …`: one subcommand per attack.

pub mod reconstruction;

use super::exit::CliResult;

pub mod adversarial;
pub mod key_recovery;
pub mod membership;

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
    /// Recover the trusted party's secret key from what it releases (attack 4).
    KeyRecovery(key_recovery::KeyRecoveryArgs),
    /// Membership inference by a semi-honest insider (paper Tables 6-7), LiRA and the loss
    /// attack.
    Membership(membership::MembershipArgs),
    /// Attack 2: reconstruct private training images from released scores (Table 5, Fig. 4).
    Reconstruction(reconstruction::ReconstructionArgs),
}

/// Runs `heist attack <attack>`.
///
/// # Errors
/// As the chosen attack.
pub fn run(args: AttackArgs) -> CliResult {
    match args.command {
        AttackCommand::Adversarial(a) => adversarial::run(a),
        AttackCommand::KeyRecovery(args) => key_recovery::run(args),
        AttackCommand::Membership(args) => membership::run(args),
        AttackCommand::Reconstruction(args) => reconstruction::run_reconstruction(args),
    }
}
