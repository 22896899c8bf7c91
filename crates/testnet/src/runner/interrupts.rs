//! Ctrl-C for a run: requests to stop, counted, so a second one can cut the end short.

use tokio::sync::watch;

/// Requests to stop a run, counted. The first ends the run: every process is killed, each
/// node's content is compared with the original, and the record and report are written. A
/// second one, or any made while the comparison runs, cuts it short (nodes not compared yet
/// get `content_ok: null`). Before any node started, the first stops the content's
/// generation.
#[derive(Debug, Clone)]
pub struct Interrupts(watch::Receiver<u32>);

/// Makes the requests an [`Interrupts`] counts (Ctrl-C in the CLI).
#[derive(Debug)]
pub struct Interrupter(watch::Sender<u32>);

impl Interrupter {
    /// One more request to stop.
    pub fn interrupt(&self) {
        self.0.send_modify(|n| *n = n.saturating_add(1));
    }
}

impl Interrupts {
    /// A pair: interrupt through the first, hand the second to [`run`].
    pub fn channel() -> (Interrupter, Interrupts) {
        let (tx, rx) = watch::channel(0);
        (Interrupter(tx), Interrupts(rx))
    }

    /// Never interrupted: the run ends when it is done or times out.
    pub fn never() -> Interrupts {
        Interrupts::channel().1
    }

    /// Requests made so far.
    pub fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Resolves once `n` requests have been made (never, if the [`Interrupter`] is dropped
    /// before).
    pub async fn reached(&mut self, n: u32) {
        if self.0.wait_for(|&count| count >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_counted() {
        let (interrupter, mut interrupts) = Interrupts::channel();
        assert_eq!(interrupts.count(), 0);
        interrupter.interrupt();
        interrupter.interrupt();
        interrupts.reached(2).await;
        assert_eq!(interrupts.count(), 2);
        // Requests made before the interrupter went away still count.
        drop(interrupter);
        interrupts.reached(1).await;
        let never = Interrupts::never();
        assert_eq!(never.count(), 0);
    }
}
