//! OpenID Connect: the logout side (RP-initiated logout in [`logout`], back-channel logout
//! in [`backchannel`]).

pub mod backchannel;
pub mod logout;
