//! Google (OAuth + Gmail) and an OpenAI-compatible LLM, emulated as an axum Router for tests and `mailwright demo`. Empty until the "Google sandbox" issue fills it.
