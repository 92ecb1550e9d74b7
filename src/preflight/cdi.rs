//! The CDI section: the devices crid's CDI registry finds in the spec
//! dirs, and spec files that conflict or cannot be read.

use super::{Finding, Group};
use crate::config::CdiConfig;
use crate::container::cdi::{CdiRegistry, Listing};

const G: Group = Group::Cdi;

pub fn check(config: &CdiConfig) -> (Finding, Listing) {
    let listing = CdiRegistry::new(config).list();
    let check = "cdi specs";
    let finding = if !listing.enabled {
        Finding::ok(G, check, "CDI disabled".into())
    } else if listing.broken.is_empty() && listing.conflicts.is_empty() {
        Finding::ok(G, check, format!("{} device(s)", listing.devices.len()))
    } else {
        Finding::blocker(
            G,
            check,
            format!(
                "{} spec file(s) not read, {} device(s) defined twice: containers asking for them fail",
                listing.broken.len(),
                listing.conflicts.len()
            ),
            "fix or remove the spec files listed in the CDI section below".into(),
        )
    };
    (finding, listing)
}
