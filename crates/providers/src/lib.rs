//! Clients of outside services (Google OAuth and Gmail, LLM, Sidemail, SMTP), each behind a small trait. Empty until the "Connect Gmail" issue fills it.
