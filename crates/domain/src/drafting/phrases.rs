//! The phrases the built-in drafter looks for: pure data.

/// Words that make a display name or an address an organisation's or a
/// robot's rather than a person's.
pub(super) const NOT_A_PERSON: &[&str] = &[
    "accounts",
    "admin",
    "alerts",
    "billing",
    "bounce",
    "careers",
    "contact",
    "customer",
    "customers",
    "daemon",
    "donotreply",
    "enquiries",
    "feedback",
    "hello",
    "help",
    "helpdesk",
    "info",
    "inquiries",
    "jobs",
    "mail",
    "mailer",
    "marketing",
    "news",
    "newsletter",
    "noreply",
    "notification",
    "notifications",
    "office",
    "orders",
    "postmaster",
    "press",
    "reply",
    "root",
    "sales",
    "security",
    "service",
    "support",
    "system",
    "team",
    "updates",
    "webmaster",
];

pub(super) const TITLES: &[&str] = &["mr", "mrs", "ms", "mx", "miss", "dr", "prof", "sir"];

/// Suffixes that make "Acme, Inc." look like "Last, First".
pub(super) const NAME_SUFFIXES: &[&str] = &[
    "inc", "ltd", "llc", "gmbh", "co", "plc", "corp", "jr", "sr", "phd", "md",
];

pub(super) const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "hiya",
    "greetings",
    "good morning",
    "good afternoon",
    "good evening",
];

pub(super) const THANKS: &[&str] = &["thank you", "thanks", "thank u", "thx"];

/// What follows "thanks for" in form letters and openers, not gratitude.
pub(super) const ROUTINE_THANKS: &[&str] = &[
    "your email",
    "your e-mail",
    "your message",
    "your note",
    "your reply",
    "your quick reply",
    "your response",
    "your quick response",
    "your order",
    "your purchase",
    "your patience",
    "your interest",
    "your inquiry",
    "your enquiry",
    "your time",
    "reaching out",
    "getting back",
    "getting in touch",
    "contacting",
    "writing",
    "signing up",
    "subscribing",
    "registering",
];

/// Words a sender puts between "thanks" and "for".
pub(super) const THANKS_INTENSIFIERS: &[&str] =
    &["so much", "very much", "a lot", "again", "a million"];

pub(super) const ACKNOWLEDGMENT: &[&str] = &[
    "please find attached",
    "find attached",
    "attached please find",
    "attached is",
    "attached are",
    "attached you'll find",
    "attached you will find",
    "is attached",
    "are attached",
    "i've attached",
    "i have attached",
    "i attached",
    "see attached",
    "please find enclosed",
    "enclosed is",
    "enclosed are",
    "as requested",
];

pub(super) const DOCUMENTS: &[&str] = &[
    "invoice",
    "invoices",
    "contract",
    "contracts",
    "document",
    "documents",
    "pdf",
    "pdfs",
    "paperwork",
    "receipt",
    "receipts",
    "spreadsheet",
    "slides",
    "copy of",
    "signed copy",
    "attachment",
    "attachments",
    "file",
    "files",
    "agreement",
    "statement",
    "report",
];

/// Asking for something to be sent. "send me the" and "copy of" are asks by
/// themselves; the rest need a document named.
pub(super) const DOCUMENT_ASKS: &[&str] = &[
    "send",
    "resend",
    "re-send",
    "send over",
    "share",
    "forward me",
    "forward us",
    "forward it",
    "forward the",
    "attach",
    "provide",
    "need",
    "email me",
    "get me",
];

pub(super) const REMINDER: &[&str] = &[
    "reminder",
    "reminders",
    "remind",
    "reminding",
    "don't forget",
    "do not forget",
    "dont forget",
];

pub(super) const FOLLOW_UP: &[&str] = &[
    "following up",
    "follow up",
    "follow-up",
    "followup",
    "any update",
    "any updates",
    "any news",
    "checking in",
    "circling back",
    "bumping this",
    "touching base",
    "just checking",
    "what's the status",
    "where are we on",
    "haven't heard back",
    "have not heard back",
];

/// A follow-up meeting is scheduling, not a nudge.
pub(super) const FOLLOW_UP_MEETINGS: &[&str] = &[
    "follow up meeting",
    "follow-up meeting",
    "followup meeting",
    "follow up call",
    "follow-up call",
    "followup call",
];

/// Asks that make a "thanks" an opener rather than the point.
pub(super) const ASKS: &[&str] = &[
    "please",
    "could you",
    "can you",
    "would you",
    "let me know",
    "let's",
    "let us",
];

pub(super) const INVITATION: &[&str] = &[
    "invite",
    "invites",
    "invited",
    "invitation",
    "invitations",
    "join us",
    "rsvp",
    "save the date",
];

pub(super) const INTRODUCTION: &[&str] = &[
    "introduce",
    "introduction",
    "introductions",
    "introducing you",
    "introducing myself",
    "intro",
    "meet my",
    "like you to meet",
    "want you to meet",
    "connect you with",
    "connecting you with",
    "put you in touch",
    "putting you in touch",
];

pub(super) const CONFIRMATION: &[&str] = &["confirm", "confirmation", "reconfirm"];

pub(super) const SCHEDULING: &[&str] = &[
    "meet",
    "meeting",
    "meetings",
    "call",
    "calls",
    "availability",
    "are you available",
    "would you be available",
    "will you be available",
    "you be available",
    "are you free",
    "schedule",
    "reschedule",
    "calendar",
    "tomorrow at",
    "time slot",
    "time slots",
    "zoom",
    "catch up",
    "appointment",
    "a time that works",
    "works for you",
];

pub(super) const INFORMATION: &[&str] = &[
    "could you tell",
    "can you tell",
    "tell me",
    "information",
    "info",
    "details",
    "how much",
    "pricing",
    "price",
    "prices",
    "cost",
    "costs",
    "rates",
    "quote for",
    "more about",
    "interested in",
];

pub(super) const UPDATE: &[&str] = &[
    "update",
    "updates",
    "updated",
    "fyi",
    "status",
    "progress",
    "news",
    "heads up",
    "heads-up",
    "just so you know",
];
