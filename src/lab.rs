//! The browser lab's settings: every control on the page, its default, its query-string form
//! and the experiment it describes. Nothing here touches the DOM, so it is tested natively; the
//! page (src/web) only binds these values to controls.

mod experiment;
pub mod prepare;
pub mod progress;
pub mod protocol;
mod query;
mod settings;
pub mod verdict;

pub use query::{ArmSetting, Setting};
pub use settings::{ArmControls, ArmKind, LabSettings};
