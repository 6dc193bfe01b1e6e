//! Clients of outside services, each behind a small type: Google OAuth and
//! Gmail now; the LLM, Sidemail and SMTP land with their issues.

pub mod google;
