//! A thread-pool [`Executor`] for `heist_he::nn`: runs the independent jobs of encrypted
//! inference (linear-layer blocks, square chunks, encryptions) on rayon's pool.

use heist_he::nn::Executor;
use rayon::prelude::*;

/// Runs jobs on a rayon thread pool (the global one unless built with
/// [`Rayon::with_threads`]).
#[derive(Debug, Default)]
pub struct Rayon {
    pool: Option<rayon::ThreadPool>,
}

impl Rayon {
    /// An executor on a pool of `threads` threads.
    ///
    /// # Errors
    /// When the pool cannot be built.
    pub fn with_threads(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        Ok(Self { pool: Some(pool) })
    }
}

impl Executor for Rayon {
    fn map<T: Send, F: Fn(usize) -> T + Sync>(&self, jobs: usize, f: F) -> Vec<T> {
        let run = || (0..jobs).into_par_iter().with_max_len(1).map(&f).collect();
        match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }

    fn for_each_mut<T: Send, F: Fn(usize, &mut T) + Sync>(&self, items: &mut [T], f: F) {
        let f = &f;
        let run = move || {
            // Moved, not reborrowed: the closure runs once.
            let items = items;
            items
                .par_iter_mut()
                .with_max_len(1)
                .enumerate()
                .for_each(|(i, item)| f(i, item));
        };
        match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }
}
