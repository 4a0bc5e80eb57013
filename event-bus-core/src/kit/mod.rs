//! The backend kit: the pieces every backend would otherwise write again. A backend implements
//! [`Settle`] for what its broker does to settle one message and hands out
//! [`Delivered`] values; [`KeyGate`] keeps per-key order for backends that dispatch
//! themselves, [`Leases`] keeps a slow handler's message leased on brokers that redeliver
//! after a deadline, and [`ClosedFlag`] refuses work after `close`.

mod closed;
mod delivered;
mod key_gate;
mod leases;

pub use closed::ClosedFlag;
pub use delivered::{Delivered, Settle};
pub use key_gate::KeyGate;
pub use leases::Leases;
