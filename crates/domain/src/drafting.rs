//! Auto-draft's vocabulary and the built-in drafter: draft types, labels as a
//! generator gives them, reply subjects and quoting, and a deterministic
//! rule-based classifier with one reply template per type.
//!
//! Draft types are an open vocabulary: a label nobody anticipated is kept as
//! given and counted as `other`, because a label is never a reason to lose a
//! draft.

use std::fmt;

/// How much of a message's text a drafter looks at. The ask is nearly always
/// near the top, and it bounds the work (and an LLM prompt) per message.
pub const TEXT_LIMIT: usize = 4000;

/// The `generator` of drafts written by [`builtin_draft`].
pub const BUILTIN_GENERATOR: &str = "builtin";

/// The first [`TEXT_LIMIT`] characters of `text`.
pub fn text_excerpt(text: &str) -> &str {
    match text.char_indices().nth(TEXT_LIMIT) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The known draft types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DraftType {
    Reply,
    Forward,
    New,
    InformationRequest,
    Acknowledgment,
    Scheduling,
    DocumentRequest,
    FollowUp,
    Confirmation,
    Question,
    ThankYou,
    Invitation,
    Reminder,
    Update,
    Introduction,
}

impl DraftType {
    pub const ALL: [DraftType; 15] = [
        DraftType::Reply,
        DraftType::Forward,
        DraftType::New,
        DraftType::InformationRequest,
        DraftType::Acknowledgment,
        DraftType::Scheduling,
        DraftType::DocumentRequest,
        DraftType::FollowUp,
        DraftType::Confirmation,
        DraftType::Question,
        DraftType::ThankYou,
        DraftType::Invitation,
        DraftType::Reminder,
        DraftType::Update,
        DraftType::Introduction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftType::Reply => "reply",
            DraftType::Forward => "forward",
            DraftType::New => "new",
            DraftType::InformationRequest => "information_request",
            DraftType::Acknowledgment => "acknowledgment",
            DraftType::Scheduling => "scheduling",
            DraftType::DocumentRequest => "document_request",
            DraftType::FollowUp => "follow_up",
            DraftType::Confirmation => "confirmation",
            DraftType::Question => "question",
            DraftType::ThankYou => "thank_you",
            DraftType::Invitation => "invitation",
            DraftType::Reminder => "reminder",
            DraftType::Update => "update",
            DraftType::Introduction => "introduction",
        }
    }

    /// The exact snake_case name only; [`DraftLabel::parse`] is the lenient one.
    pub fn parse(text: &str) -> Option<DraftType> {
        DraftType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for DraftType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Labels are stored and shown; past this they are noise.
const LABEL_MAX_CHARS: usize = 64;

/// A generator's label, kept as given (trimmed, at most 64 characters, never
/// empty: an empty one becomes `reply`) plus the known type it normalises to,
/// if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftLabel {
    label: String,
    known: Option<DraftType>,
}

impl DraftLabel {
    /// Keeps the label as given and recognises it leniently: lower case,
    /// any run of non-alphanumerics as one `_`, then the exact type names,
    /// then a few common aliases.
    pub fn parse(raw: &str) -> DraftLabel {
        // A stray newline from a model must not reach logs or the database.
        let cleaned: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let trimmed = cleaned.trim();
        if trimmed.is_empty() {
            return DraftLabel::known(DraftType::Reply);
        }
        let label: String = trimmed.chars().take(LABEL_MAX_CHARS).collect();
        let label = label.trim_end().to_owned();
        let key = label_key(&label);
        let known = DraftType::parse(&key).or_else(|| alias(&key));
        DraftLabel { label, known }
    }

    pub fn known(label: DraftType) -> DraftLabel {
        DraftLabel {
            label: label.as_str().to_owned(),
            known: Some(label),
        }
    }

    /// The label as given (trimmed and truncated), e.g. `urgent_callback` or
    /// `Document Request`.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn known_type(&self) -> Option<DraftType> {
        self.known
    }

    /// The stats bucket: the known type's name, or `other`.
    pub fn draft_type(&self) -> &'static str {
        self.known.map_or("other", DraftType::as_str)
    }
}

impl fmt::Display for DraftLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

fn label_key(label: &str) -> String {
    let mut key = String::with_capacity(label.len());
    for c in label.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            key.push(c);
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
    }
    while key.ends_with('_') {
        key.pop();
    }
    key
}

fn alias(key: &str) -> Option<DraftType> {
    Some(match key {
        "thanks" | "thankyou" | "thank" | "thanks_note" => DraftType::ThankYou,
        "ack" | "acknowledge" | "acknowledged" | "acknowledgement" => DraftType::Acknowledgment,
        "meeting_request" | "meeting" | "schedule" | "schedule_meeting" | "appointment" => {
            DraftType::Scheduling
        }
        "info_request"
        | "request_for_information"
        | "information"
        | "info"
        | "inquiry"
        | "enquiry" => DraftType::InformationRequest,
        "followup" | "follow" => DraftType::FollowUp,
        "intro" | "introductions" => DraftType::Introduction,
        "invite" | "invitations" => DraftType::Invitation,
        "document" | "documents" | "doc_request" | "documents_request" | "file_request" => {
            DraftType::DocumentRequest
        }
        "fwd" | "fw" => DraftType::Forward,
        "confirm" => DraftType::Confirmation,
        "remind" | "reminders" => DraftType::Reminder,
        "status_update" | "updates" | "fyi" => DraftType::Update,
        "questions" => DraftType::Question,
        "response" | "answer" => DraftType::Reply,
        "new_email" | "new_message" => DraftType::New,
        _ => return None,
    })
}

/// `Re: <subject>` without stacking prefixes: leading `Re:` (any case, also
/// `Re[2]:`, possibly repeated) collapse into one `Re: `; other prefixes such
/// as `Fwd:` stay. An empty subject gives `Re:`. The result is one line, so
/// it is safe in a header.
pub fn reply_subject(original: &str) -> String {
    let flat = one_line(original);
    let rest = strip_prefixes(&flat, false);
    if rest.is_empty() {
        "Re:".to_owned()
    } else {
        format!("Re: {rest}")
    }
}

/// The original quoted below a reply, the way mail clients do it:
/// `On {date}, {sender} wrote:` then every line prefixed with `> ` (empty
/// lines with `>`). An empty `date` gives `{sender} wrote:`.
pub fn quote(sender: &str, date: &str, text: &str) -> String {
    let sender = one_line(sender);
    let date = one_line(date);
    let who = if sender.is_empty() {
        "the sender"
    } else {
        sender.as_str()
    };
    let mut out = if date.is_empty() {
        let mut header = format!("{who} wrote:");
        capitalise_first(&mut header);
        header
    } else {
        format!("On {date}, {who} wrote:")
    };
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
    let first = lines.iter().position(|line| !line.is_empty());
    let last = lines.iter().rposition(|line| !line.is_empty());
    if let (Some(first), Some(last)) = (first, last) {
        for line in &lines[first..=last] {
            out.push('\n');
            if line.is_empty() {
                out.push('>');
            } else {
                out.push_str("> ");
                out.push_str(line);
            }
        }
    }
    out
}

/// What the drafter sees of the inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRequest {
    /// The display name from `From`, if any.
    pub sender_name: Option<String>,
    pub sender_address: String,
    pub subject: String,
    /// The plain-text body; drafters use only [`text_excerpt`] of it.
    pub text: String,
    /// The mailbox owner's name, for the signature; without it the draft ends
    /// with a closing line only.
    pub owner_name: Option<String>,
    pub owner_address: String,
}

/// A generated reply: the body only (subject, quoting and headers are the
/// caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedDraft {
    pub label: DraftLabel,
    pub body: String,
    /// `builtin` or `llm:<model>`.
    pub generator: String,
}

/// The built-in drafter: deterministic rules give a type, then that type's
/// template.
pub fn builtin_draft(request: &DraftRequest) -> GeneratedDraft {
    let classification = classify(&request.subject, &request.text);
    GeneratedDraft {
        label: DraftLabel::known(classification.kind),
        body: render(&classification, request),
        generator: BUILTIN_GENERATOR.to_owned(),
    }
}

/// The type [`builtin_draft`] gives a message with this subject and text.
pub fn builtin_classify(subject: &str, text: &str) -> DraftType {
    classify(subject, text).kind
}

/// The first name to greet: the display name's first word ("Zoë Martin" and
/// "Martin, Zoë" give "Zoë"), else the address's local part capitalised when
/// it looks like a name, else `None` (greet with "Hello,").
pub fn greeting_name(request: &DraftRequest) -> Option<String> {
    match request.sender_name.as_deref().map(one_line) {
        Some(display) if !display.is_empty() && !display.contains('@') => {
            // A display name that is there but not a person's ("Acme
            // Support") says more than the address does: no name.
            name_from_display(&display)
        }
        _ => name_from_address(&request.sender_address),
    }
}

/// Words that make a display name or an address an organisation's or a
/// robot's rather than a person's.
const NOT_A_PERSON: &[&str] = &[
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

const TITLES: &[&str] = &["mr", "mrs", "ms", "mx", "miss", "dr", "prof", "sir"];

/// Suffixes that make "Acme, Inc." look like "Last, First".
const NAME_SUFFIXES: &[&str] = &[
    "inc", "ltd", "llc", "gmbh", "co", "plc", "corp", "jr", "sr", "phd", "md",
];

fn name_from_display(display: &str) -> Option<String> {
    let display = display.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let lower = display.to_lowercase();
    if lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| NOT_A_PERSON.contains(&word))
    {
        return None;
    }
    // Outlook's directory format is "Last, First".
    let given = match display.split_once(',') {
        Some((_, given)) => {
            let first = bare_word(given.split_whitespace().next().unwrap_or(""));
            if first.is_empty() || NAME_SUFFIXES.contains(&first.to_lowercase().as_str()) {
                display
            } else {
                given
            }
        }
        None => display,
    };
    let mut words = given
        .split_whitespace()
        .map(bare_word)
        .filter(|w| !w.is_empty());
    let mut first = words.next()?;
    if TITLES.contains(&first.to_lowercase().as_str())
        && let Some(next) = words.next()
    {
        first = next;
    }
    looks_like_name(first).then(|| first.to_owned())
}

fn name_from_address(address: &str) -> Option<String> {
    let local = address
        .trim()
        .rsplit_once('@')
        .map_or("", |(local, _)| local);
    let local = local.split('+').next().unwrap_or("");
    let lower = local.to_lowercase();
    if NOT_A_PERSON.contains(&lower.as_str()) {
        return None;
    }
    let letters_only =
        |part: &str| part.chars().count() >= 2 && part.chars().all(char::is_alphabetic);
    if letters_only(local) && local.chars().count() <= 20 {
        return Some(capitalised(local));
    }
    // first.last@ is as common as a bare first name.
    let parts: Vec<&str> = local.split('.').collect();
    if (2..=3).contains(&parts.len())
        && parts.iter().all(|part| letters_only(part))
        && !NOT_A_PERSON.contains(&parts[0].to_lowercase().as_str())
    {
        return Some(capitalised(parts[0]));
    }
    None
}

fn bare_word(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric())
}

fn looks_like_name(word: &str) -> bool {
    word.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && word.chars().count() <= 30
        && word.chars().next().is_some_and(char::is_alphabetic)
        && word
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’' | '.'))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn capitalise_first(text: &mut String) {
    if let Some(first) = text.chars().next()
        && first.is_lowercase()
    {
        let upper: String = first.to_uppercase().collect();
        text.replace_range(..first.len_utf8(), &upper);
    }
}

/// Whitespace and control characters (folded headers, CR) as single spaces.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Strips leading `Re:`/`Re[n]:` prefixes, and `Fwd:`/`Fw:` too when
/// `forwards` (for naming the topic, not for the reply subject).
fn strip_prefixes(subject: &str, forwards: bool) -> &str {
    let mut rest = subject.trim();
    loop {
        let next = strip_prefix(rest, "re").or_else(|| {
            if forwards {
                strip_prefix(rest, "fwd").or_else(|| strip_prefix(rest, "fw"))
            } else {
                None
            }
        });
        match next {
            Some(after) => rest = after.trim_start(),
            None => return rest,
        }
    }
}

/// `text` after `word` (ASCII, any case), an optional `[n]`, optional spaces
/// and a colon.
fn strip_prefix<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let mut rest = &text[word.len()..];
    if let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']')?;
        if close == 0 || !inner[..close].chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        rest = &inner[close + 1..];
    }
    rest.trim_start_matches(' ').strip_prefix(':')
}

/// Subjects quoted in a template are cut here, at a word where possible.
const TOPIC_MAX_CHARS: usize = 80;

/// The subject as a template names it: one line, without reply/forward
/// prefixes, shortened; `None` when there is nothing left.
fn topic(subject: &str) -> Option<String> {
    let flat = one_line(subject);
    let rest = strip_prefixes(&flat, true);
    (!rest.is_empty()).then(|| shorten(rest, TOPIC_MAX_CHARS))
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars).collect();
    // Prefer a word boundary when one is close to the limit.
    let cut = match cut.rfind(' ') {
        Some(space) if cut[space..].chars().count() <= 20 => &cut[..space],
        _ => cut.as_str(),
    };
    let cut =
        cut.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-'));
    format!("{cut}…")
}

// ---------------------------------------------------------------------------
// Classification

struct Classification {
    kind: DraftType,
    /// What the template mentions: the document asked for, or the question.
    detail: Option<String>,
}

/// The message as the rules read it.
struct Reading {
    /// Subject and new content (no quoted reply, no signature), lower case,
    /// with the things a sender thanks for blanked out, so "thanks for the
    /// reminder" is not a reminder.
    haystack: String,
    /// Content lines in their own case, greeting dropped.
    lines: Vec<String>,
    /// How many of `lines` are content rather than sign-off.
    content_len: usize,
    subject: String,
    subject_is_reply: bool,
}

fn read(subject: &str, text: &str) -> Reading {
    let subject = one_line(subject);
    let subject_is_reply = strip_prefix(&subject, "re").is_some();
    let mut lines = content_lines(text_excerpt(text));
    if lines.first().is_some_and(|line| is_greeting(line)) {
        lines.remove(0);
    }
    let content_len = sign_off_start(&lines);
    let mut haystack = normalised(&subject);
    for line in &lines {
        haystack.push('\n');
        haystack.push_str(&normalised(line));
    }
    let haystack = blank_thanked_things(&haystack).replace("for your information", "fyi");
    Reading {
        haystack,
        lines,
        content_len,
        subject,
        subject_is_reply,
    }
}

fn normalised(text: &str) -> String {
    text.to_lowercase().replace(['’', '‘'], "'")
}

/// The new part of a message: stops at a quoted reply's header or a
/// signature, skips quoted and empty lines.
fn content_lines(text: &str) -> Vec<String> {
    let raw: Vec<&str> = text.split(['\n', '\r']).map(str::trim).collect();
    let mut lines: Vec<String> = Vec::new();
    for (index, line) in raw.iter().enumerate() {
        if line.is_empty() || line.starts_with('>') {
            continue;
        }
        let lower = line.to_lowercase();
        if *line == "--" || *line == "__" || lower.starts_with("-----original message") {
            break;
        }
        if lower.starts_with("---------- forwarded message") {
            break;
        }
        if lower.ends_with("wrote:") {
            // Clients wrap a long "On …, X <x@y> wrote:" over two lines.
            if lines.last().is_some_and(|last| last.starts_with("On ")) {
                lines.pop();
            }
            break;
        }
        if lower.starts_with("from:") {
            let next = raw[index + 1..].iter().find(|l| !l.is_empty());
            if next.is_some_and(|next| {
                let next = next.to_lowercase();
                next.starts_with("sent:") || next.starts_with("date:")
            }) {
                break;
            }
        }
        if lower.starts_with("sent from my ") || lower.starts_with("get outlook for ") {
            continue;
        }
        lines.push((*line).to_owned());
    }
    lines
}

const GREETINGS: &[&str] = &[
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

fn is_greeting(line: &str) -> bool {
    let lower = normalised(line);
    GREETINGS
        .iter()
        .any(|greeting| starts_with_phrase(&lower, greeting))
        && line.split_whitespace().count() <= 4
        && !line.contains('?')
}

/// Where the trailing run of short lines ("Thanks,", "Bob", "CEO, Acme")
/// begins, when something of substance comes before it; else `lines.len()`.
fn sign_off_start(lines: &[String]) -> usize {
    let short = |line: &String| line.split_whitespace().count() <= 3;
    let start = lines.len() - lines.iter().rev().take_while(|line| short(line)).count();
    if start == 0 { lines.len() } else { start }
}

/// Whether `phrase` occurs in `haystack` as whole words.
fn has_phrase(haystack: &str, phrase: &str) -> bool {
    phrase_at(haystack, phrase).next().is_some()
}

fn phrase_at<'a>(haystack: &'a str, phrase: &'a str) -> impl Iterator<Item = usize> + 'a {
    haystack.match_indices(phrase).filter_map(move |(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + phrase.len()..].chars().next();
        (!before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric))
            .then_some(at)
    })
}

fn starts_with_phrase(text: &str, phrase: &str) -> bool {
    text.starts_with(phrase)
        && !text[phrase.len()..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
}

fn has_any(haystack: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|phrase| has_phrase(haystack, phrase))
}

/// The phrase of `phrases` that occurs first in `haystack`.
fn first_of<'a>(haystack: &str, phrases: &[&'a str]) -> Option<&'a str> {
    phrases
        .iter()
        .filter_map(|phrase| phrase_at(haystack, phrase).next().map(|at| (at, *phrase)))
        .min_by_key(|(at, phrase)| (*at, std::cmp::Reverse(phrase.len())))
        .map(|(_, phrase)| phrase)
}

/// A `?` that ends a question, not one inside a URL's query.
fn has_question_mark(text: &str) -> bool {
    text.match_indices('?').any(|(at, _)| {
        text[at + 1..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || "?!.,)]\"'”’*".contains(c))
    })
}

const THANKS: &[&str] = &["thank you", "thanks", "thank u", "thx"];

/// What follows "thanks for" in form letters and openers, not gratitude.
const ROUTINE_THANKS: &[&str] = &[
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
const THANKS_INTENSIFIERS: &[&str] = &["so much", "very much", "a lot", "again", "a million"];

/// Blanks what follows "thanks for", up to punctuation or six words.
fn blank_thanked_things(haystack: &str) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for thanks in THANKS {
        for at in phrase_at(haystack, thanks) {
            let mut rest = &haystack[at + thanks.len()..];
            for intensifier in THANKS_INTENSIFIERS {
                if let Some(after) = rest
                    .strip_prefix(' ')
                    .and_then(|r| r.strip_prefix(intensifier))
                {
                    rest = after;
                    break;
                }
            }
            let Some(object) = rest.strip_prefix(" for ") else {
                continue;
            };
            let start = haystack.len() - object.len();
            let mut end = object
                .find(|c: char| ".,!?;:\n".contains(c))
                .unwrap_or(object.len());
            let mut words = 0;
            let mut in_word = false;
            for (at, c) in object[..end].char_indices() {
                if c.is_whitespace() {
                    in_word = false;
                } else if !in_word {
                    in_word = true;
                    words += 1;
                    if words > 6 {
                        end = at;
                        break;
                    }
                }
            }
            ranges.push((start, start + end));
        }
    }
    haystack
        .char_indices()
        .map(|(at, c)| {
            if ranges
                .iter()
                .any(|(start, end)| (*start..*end).contains(&at))
            {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Whether the sender is thanking: "thanks" outside the sign-off, not "in
/// advance", not a form letter's "thank you for your order".
fn thanks_sincerely(reading: &Reading) -> bool {
    let mut candidates = vec![normalised(&reading.subject)];
    candidates.extend(
        reading.lines[..reading.content_len]
            .iter()
            .map(|l| normalised(l)),
    );
    candidates.iter().any(|text| {
        THANKS.iter().any(|thanks| {
            phrase_at(text, thanks).any(|at| {
                let mut rest = text[at + thanks.len()..].trim_start();
                if rest.starts_with("in advance") || rest.starts_with("in anticipation") {
                    return false;
                }
                for intensifier in THANKS_INTENSIFIERS {
                    if let Some(after) = rest.strip_prefix(intensifier) {
                        rest = after.trim_start();
                        break;
                    }
                }
                match rest.strip_prefix("for ") {
                    Some(object) => !ROUTINE_THANKS.iter().any(|r| starts_with_phrase(object, r)),
                    None => true,
                }
            })
        })
    })
}

/// The first question the sender asks, as a sentence, if it is short enough
/// to quote.
fn first_question(reading: &Reading) -> Option<String> {
    let from_lines = reading.lines.iter().find_map(|line| question_in(line));
    from_lines.or_else(|| {
        if reading.subject_is_reply {
            None
        } else {
            question_in(strip_prefixes(&reading.subject, true))
        }
    })
}

fn question_in(line: &str) -> Option<String> {
    let end = line.match_indices('?').find_map(|(at, _)| {
        line[at + 1..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || "?!.,)]\"'”’*".contains(c))
            .then_some(at + 1)
    })?;
    let start = line[..end - 1]
        .rfind(['.', '!', '?'])
        .map_or(0, |at| at + 1);
    let sentence = line[start..end].trim();
    let length = sentence.chars().count();
    (3..=200).contains(&length).then(|| sentence.to_owned())
}

const ACKNOWLEDGMENT: &[&str] = &[
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

const DOCUMENTS: &[&str] = &[
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
const DOCUMENT_ASKS: &[&str] = &[
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

const REMINDER: &[&str] = &[
    "reminder",
    "reminders",
    "remind",
    "reminding",
    "don't forget",
    "do not forget",
    "dont forget",
];

const FOLLOW_UP: &[&str] = &[
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
const FOLLOW_UP_MEETINGS: &[&str] = &[
    "follow up meeting",
    "follow-up meeting",
    "followup meeting",
    "follow up call",
    "follow-up call",
    "followup call",
];

/// Asks that make a "thanks" an opener rather than the point.
const ASKS: &[&str] = &[
    "please",
    "could you",
    "can you",
    "would you",
    "let me know",
    "let's",
    "let us",
];

const INVITATION: &[&str] = &[
    "invite",
    "invites",
    "invited",
    "invitation",
    "invitations",
    "join us",
    "rsvp",
    "save the date",
];

const INTRODUCTION: &[&str] = &[
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

const CONFIRMATION: &[&str] = &["confirm", "confirmation", "reconfirm"];

const SCHEDULING: &[&str] = &[
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

const INFORMATION: &[&str] = &[
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

const UPDATE: &[&str] = &[
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

/// The rules, most specific first. A message that delivers something is
/// acknowledged before anything it asks; a reminder or nudge is that before
/// it is about a meeting; sincere thanks win over what was thanked for.
fn classify(subject: &str, text: &str) -> Classification {
    let reading = read(subject, text);
    let h = reading.haystack.as_str();
    let plain = |kind| Classification { kind, detail: None };
    let asks_question = reading.lines.iter().any(|line| has_question_mark(line))
        || (!reading.subject_is_reply && has_question_mark(&reading.subject));

    if has_any(h, ACKNOWLEDGMENT) {
        return plain(DraftType::Acknowledgment);
    }
    if let Some(document) = first_of(h, DOCUMENTS)
        && has_any(h, DOCUMENT_ASKS)
    {
        return Classification {
            kind: DraftType::DocumentRequest,
            detail: Some(document_name(document).to_owned()),
        };
    }
    if has_any(h, REMINDER) {
        return plain(DraftType::Reminder);
    }
    if has_any(h, FOLLOW_UP) && !has_any(h, FOLLOW_UP_MEETINGS) {
        return plain(DraftType::FollowUp);
    }
    if !asks_question && !has_any(h, ASKS) && thanks_sincerely(&reading) {
        return plain(DraftType::ThankYou);
    }
    if has_any(h, INVITATION) {
        return plain(DraftType::Invitation);
    }
    if has_any(h, INTRODUCTION) {
        return plain(DraftType::Introduction);
    }
    if has_any(h, CONFIRMATION) {
        return plain(DraftType::Confirmation);
    }
    // "next week" alone is usually a promise ("I'll send it next week");
    // asked about, it is a time.
    if has_any(h, SCHEDULING) || (asks_question && has_phrase(h, "next week")) {
        return plain(DraftType::Scheduling);
    }
    if has_any(h, INFORMATION) {
        return Classification {
            kind: DraftType::InformationRequest,
            detail: first_question(&reading),
        };
    }
    if asks_question {
        return Classification {
            kind: DraftType::Question,
            detail: first_question(&reading),
        };
    }
    if has_any(h, UPDATE) {
        return plain(DraftType::Update);
    }
    plain(DraftType::Reply)
}

fn document_name(phrase: &str) -> &str {
    match phrase {
        "pdf" => "PDF",
        "pdfs" => "PDFs",
        "copy of" => "copy",
        other => other,
    }
}

// ---------------------------------------------------------------------------
// Templates

fn render(classification: &Classification, request: &DraftRequest) -> String {
    let greeting = match greeting_name(request) {
        Some(name) => format!("Hi {name},"),
        None => "Hello,".to_owned(),
    };
    let topic = topic(&request.subject);
    let about = topic
        .as_deref()
        .map(|topic| format!(" about “{topic}”"))
        .unwrap_or_default();
    let on = topic
        .as_deref()
        .map(|topic| format!(" on “{topic}”"))
        .unwrap_or_default();
    // A question that is the whole subject is already named by `about`.
    let asked = classification
        .detail
        .as_deref()
        .map(one_line)
        .filter(|question| topic.as_deref() != Some(question.as_str()))
        .map(|question| format!(" You asked: “{question}”"))
        .unwrap_or_default();
    let paragraph = match classification.kind {
        DraftType::Reply => format!(
            "Thanks for your message{about}. I've read it and will get back to you properly soon."
        ),
        DraftType::Forward => format!(
            "Thanks for your message{about}. I'll pass it on to the right person and let you know once it's with them."
        ),
        DraftType::New => format!(
            "I'm getting in touch{about}. Let me know when would be a good time to talk it through."
        ),
        DraftType::InformationRequest => format!(
            "Thanks for getting in touch{about}.{asked} I'll gather the details and send them over shortly."
        ),
        DraftType::Acknowledgment => format!(
            "Thanks for your email{about}. I've received what you sent and will go through it shortly."
        ),
        DraftType::Scheduling => format!(
            "Thanks for getting in touch{about}. I'll check my calendar and come back to you with some times that work."
        ),
        DraftType::DocumentRequest => {
            let document = classification
                .detail
                .as_deref()
                .map_or_else(|| "document".to_owned(), one_line);
            format!(
                "Thanks for your message{about}. I'll get the {document} you asked for over to you shortly."
            )
        }
        DraftType::FollowUp => format!(
            "Thanks for following up{on}. I haven't forgotten, and you'll have an update from me shortly."
        ),
        DraftType::Confirmation => format!(
            "Thanks for your message{about}. I'll double-check the details and confirm shortly."
        ),
        DraftType::Question => format!(
            "Thanks for your question{about}.{asked} I'll look into it and get back to you with an answer soon."
        ),
        DraftType::ThankYou => format!(
            "Thank you for your kind note{about}. It was my pleasure, and don't hesitate to get in touch if there's anything else I can do."
        ),
        DraftType::Invitation => {
            // Calendar invitations put "Invitation:" in the subject.
            let event = topic.as_deref().map(|topic| {
                ["updated invitation:", "invitation:"]
                    .iter()
                    .find_map(|prefix| {
                        let head = topic.get(..prefix.len())?;
                        head.eq_ignore_ascii_case(prefix)
                            .then(|| topic[prefix.len()..].trim_start())
                    })
                    .unwrap_or(topic)
            });
            let to = event
                .filter(|event| !event.is_empty())
                .map(|event| format!(" to “{event}”"))
                .unwrap_or_default();
            format!(
                "Thank you for the invitation{to}. I'll check my schedule and let you know shortly whether I can make it."
            )
        }
        DraftType::Reminder => {
            format!("Thanks for the reminder{about}. It's on my list and I'll take care of it.")
        }
        DraftType::Update => format!(
            "Thanks for the update{on}. Good to know; I'll reach out if I have any questions."
        ),
        DraftType::Introduction => format!(
            "Thank you for your email{about} and for the introduction. I'm glad to be connected and will follow up to find a time to talk."
        ),
    };
    let closing = match request.owner_name.as_deref().map(one_line) {
        Some(name) if !name.is_empty() => format!("Best regards,\n{name}"),
        _ => "Best regards,".to_owned(),
    };
    format!("{greeting}\n\n{paragraph}\n\n{closing}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(subject: &str, text: &str) -> DraftRequest {
        DraftRequest {
            sender_name: Some("Zoë Martin".into()),
            sender_address: "zoe@example.com".into(),
            subject: subject.into(),
            text: text.into(),
            owner_name: Some("Ann Example".into()),
            owner_address: "ann@example.com".into(),
        }
    }

    fn kind(subject: &str, text: &str) -> DraftType {
        builtin_classify(subject, text)
    }

    #[test]
    fn type_names_round_trip() {
        for kind in DraftType::ALL {
            assert_eq!(DraftType::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        let mut names: Vec<_> = DraftType::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 15);
        assert_eq!(DraftType::parse("Thank_You"), None);
        assert_eq!(DraftType::parse(" reply"), None);
    }

    #[test]
    fn labels_keep_the_raw_text_and_normalise_known_ones() {
        let label = DraftLabel::parse("  Document Request ");
        assert_eq!(label.label(), "Document Request");
        assert_eq!(label.known_type(), Some(DraftType::DocumentRequest));
        assert_eq!(label.draft_type(), "document_request");

        let label = DraftLabel::parse("urgent_callback");
        assert_eq!(label.label(), "urgent_callback");
        assert_eq!(label.known_type(), None);
        assert_eq!(label.draft_type(), "other");

        for (raw, expected) in [
            ("thanks", DraftType::ThankYou),
            ("ThankYou", DraftType::ThankYou),
            ("thank-you", DraftType::ThankYou),
            ("ack", DraftType::Acknowledgment),
            ("Acknowledgement", DraftType::Acknowledgment),
            ("meeting_request", DraftType::Scheduling),
            ("schedule", DraftType::Scheduling),
            ("info_request", DraftType::InformationRequest),
            ("request for information", DraftType::InformationRequest),
            ("Request/For--Information", DraftType::InformationRequest),
            ("followup", DraftType::FollowUp),
            ("Follow-Up", DraftType::FollowUp),
            ("follow  up", DraftType::FollowUp),
            ("intro", DraftType::Introduction),
            ("invite", DraftType::Invitation),
            ("Question.", DraftType::Question),
            ("INFORMATION_REQUEST", DraftType::InformationRequest),
        ] {
            let label = DraftLabel::parse(raw);
            assert_eq!(label.known_type(), Some(expected), "{raw}");
            assert_eq!(label.label(), raw.trim(), "{raw}");
        }
    }

    #[test]
    fn empty_labels_become_reply_and_long_ones_are_cut() {
        for raw in ["", "   ", "\n\t"] {
            assert_eq!(DraftLabel::parse(raw), DraftLabel::known(DraftType::Reply));
        }
        let long = "x".repeat(100);
        assert_eq!(DraftLabel::parse(&long).label().chars().count(), 64);
        let accented = "é".repeat(100);
        assert_eq!(DraftLabel::parse(&accented).label(), "é".repeat(64));
        let label = DraftLabel::parse("urgent\ncallback");
        assert_eq!(label.label(), "urgent callback");
        assert_eq!(label.draft_type(), "other");
        assert_eq!(DraftLabel::known(DraftType::FollowUp).label(), "follow_up");
    }

    #[test]
    fn reply_subjects_do_not_stack() {
        assert_eq!(reply_subject("Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("Re: Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("RE: Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("re:Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("Re: RE: re: Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("Re[2]: Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("Re : Lunch"), "Re: Lunch");
        assert_eq!(reply_subject("Fwd: Lunch"), "Re: Fwd: Lunch");
        assert_eq!(reply_subject("Re: Fwd: Re: Lunch"), "Re: Fwd: Re: Lunch");
        assert_eq!(reply_subject("Results"), "Re: Results");
        assert_eq!(reply_subject("Re[x]: Lunch"), "Re: Re[x]: Lunch");
        assert_eq!(reply_subject(""), "Re:");
        assert_eq!(reply_subject("  Re:  "), "Re:");
        assert_eq!(
            reply_subject(" Lunch\r\n on Friday "),
            "Re: Lunch on Friday"
        );
        assert_eq!(reply_subject("Réunion"), "Re: Réunion");
    }

    #[test]
    fn quotes_like_a_mail_client() {
        assert_eq!(
            quote(
                "Zoë <zoe@example.com>",
                "Mon, 3 Mar 2025 at 10:00",
                "Hello\r\n\r\nBye\r\n"
            ),
            "On Mon, 3 Mar 2025 at 10:00, Zoë <zoe@example.com> wrote:\n> Hello\n>\n> Bye"
        );
        assert_eq!(quote("Zoë", "", "a\n> b"), "Zoë wrote:\n> a\n> > b");
        assert_eq!(quote("Zoë", "", ""), "Zoë wrote:");
        assert_eq!(quote("", "", "a"), "The sender wrote:\n> a");
        assert_eq!(
            quote("Zoë\r\n", "today", "a\rb"),
            "On today, Zoë wrote:\n> a\n> b"
        );
    }

    #[test]
    fn greets_by_first_name() {
        let mut r = request("", "");
        assert_eq!(greeting_name(&r).as_deref(), Some("Zoë"));
        r.sender_name = Some("Martin, Zoë".into());
        assert_eq!(greeting_name(&r).as_deref(), Some("Zoë"));
        r.sender_name = Some("\"Dr. Zoë Martin\"".into());
        assert_eq!(greeting_name(&r).as_deref(), Some("Zoë"));
        r.sender_name = Some("Jean-Luc Picard".into());
        assert_eq!(greeting_name(&r).as_deref(), Some("Jean-Luc"));
        r.sender_name = Some("Acme, Inc.".into());
        assert_eq!(greeting_name(&r).as_deref(), Some("Acme"));
        r.sender_name = Some("Acme Support".into());
        assert_eq!(greeting_name(&r), None);
        r.sender_name = Some("zoe@example.com".into());
        assert_eq!(greeting_name(&r).as_deref(), Some("Zoe"));
        r.sender_name = Some("  ".into());
        assert_eq!(greeting_name(&r).as_deref(), Some("Zoe"));
        r.sender_name = Some("42".into());
        assert_eq!(greeting_name(&r), None);

        r.sender_name = None;
        for (address, expected) in [
            ("zoe@example.com", Some("Zoe")),
            ("ZOE@example.com", Some("Zoe")),
            ("zoe+news@example.com", Some("Zoe")),
            ("zoe.martin@example.com", Some("Zoe")),
            ("zm42@example.com", None),
            ("z.martin@example.com", None),
            ("noreply@example.com", None),
            ("support@example.com", None),
            ("sales.team@example.com", None),
            ("not-an-address", None),
        ] {
            r.sender_address = address.into();
            assert_eq!(greeting_name(&r).as_deref(), expected, "{address}");
        }
    }

    #[test]
    fn classifies_each_type() {
        let cases = [
            (
                "Contract",
                "Hi Ann,\nCould you send me the signed contract?\nThanks,\nZoë",
                DraftType::DocumentRequest,
            ),
            (
                "Invoice #42",
                "We need a copy of the invoice for our records.",
                DraftType::DocumentRequest,
            ),
            (
                "Report",
                "Please find attached the Q3 report.",
                DraftType::Acknowledgment,
            ),
            (
                "Catch-up",
                "Are you available for a call on Thursday?",
                DraftType::Scheduling,
            ),
            (
                "Project",
                "Can we meet next week to go over it?",
                DraftType::Scheduling,
            ),
            (
                "Party",
                "We'd love for you to join us on Saturday. Please RSVP by Friday.",
                DraftType::Invitation,
            ),
            (
                "Payment",
                "Just a reminder that the payment is due on Friday.",
                DraftType::Reminder,
            ),
            (
                "Proposal",
                "Just following up on my proposal from last week.",
                DraftType::FollowUp,
            ),
            ("Proposal", "Any update on this?", DraftType::FollowUp),
            (
                "Yesterday",
                "Thank you so much for your help yesterday, it made a big difference.",
                DraftType::ThankYou,
            ),
            (
                "Order",
                "Please confirm the delivery address for the order.",
                DraftType::Confirmation,
            ),
            (
                "Sam",
                "I'd like to introduce you to Sam, who runs our design team.",
                DraftType::Introduction,
            ),
            (
                "Plans",
                "How much does the premium plan cost per seat?",
                DraftType::InformationRequest,
            ),
            (
                "Plans",
                "I'd like more information on your plans.",
                DraftType::InformationRequest,
            ),
            (
                "Venue",
                "Is the venue wheelchair accessible?",
                DraftType::Question,
            ),
            ("Project", "FYI the launch moved to May.", DraftType::Update),
            (
                "Hello",
                "It was lovely to see you at the conference.",
                DraftType::Reply,
            ),
        ];
        for (subject, text, expected) in cases {
            assert_eq!(kind(subject, text), expected, "{subject}: {text}");
        }
    }

    #[test]
    fn tricky_classifications() {
        // A sign-off "Thanks," is not a thank-you.
        assert_eq!(
            kind(
                "Launch",
                "The launch has moved to May, status is green.\nThanks,\nZoë"
            ),
            DraftType::Update
        );
        // Thanks for a reminder is thanks, not a reminder.
        assert_eq!(
            kind("Re: Payment", "Thanks for the reminder!"),
            DraftType::ThankYou
        );
        assert_eq!(
            kind("", "Thank you for the lovely meeting yesterday."),
            DraftType::ThankYou
        );
        // A short "Thanks!" on its own is the whole point.
        assert_eq!(kind("", "Hi Ann,\nThanks!\nZoë"), DraftType::ThankYou);
        // Form-letter thanks and thanks with an ask are openers.
        assert_eq!(
            kind(
                "Order 1234",
                "Thank you for your order. Please confirm your address."
            ),
            DraftType::Confirmation
        );
        assert_eq!(
            kind("", "Thanks for your email. Let's meet on Tuesday at 3pm."),
            DraftType::Scheduling
        );
        assert_eq!(
            kind("", "Thanks! What time does the talk start?"),
            DraftType::Question
        );
        assert_eq!(
            kind("", "Thanks in advance for the details on pricing."),
            DraftType::InformationRequest
        );
        // A reminder about a meeting is a reminder.
        assert_eq!(
            kind("Reminder: meeting tomorrow at 10", ""),
            DraftType::Reminder
        );
        // A follow-up meeting is scheduling.
        assert_eq!(
            kind("", "Shall we set up a follow-up meeting next Tuesday?"),
            DraftType::Scheduling
        );
        // "meet my" introduces; "looking forward" asks for nothing.
        assert_eq!(
            kind("", "I'd like you to meet my colleague Sam."),
            DraftType::Introduction
        );
        assert_eq!(
            kind("", "Looking forward to the report. Talk soon."),
            DraftType::Reply
        );
        // A document mentioned without an ask is not a document request.
        assert_eq!(
            kind("Invoice", "Here is your invoice for March."),
            DraftType::Reply
        );
        // "available" about a thing, and "next week" as a promise.
        assert_eq!(
            kind("", "The new version is now available for download."),
            DraftType::Reply
        );
        assert_eq!(kind("", "I'll get it done next week."), DraftType::Reply);
        // A `?` inside a link is not a question.
        assert_eq!(
            kind("", "Here it is: https://example.com/page?id=3&x=y"),
            DraftType::Reply
        );
        // Words inside other words do not count.
        assert_eq!(
            kind("", "Our recall of the batch went fine."),
            DraftType::Reply
        );
        // "for your information" is FYI, not an information request.
        assert_eq!(
            kind("", "For your information, the office is closed."),
            DraftType::Update
        );
        // Quoted history and signatures are not the new message.
        assert_eq!(
            kind(
                "Re: Contract",
                "Got it, all good.\n\nOn Mon, 3 Mar 2025, Ann <ann@example.com> wrote:\n> Could you send me the contract?"
            ),
            DraftType::Reply
        );
        assert_eq!(
            kind(
                "",
                "All good here.\n-- \nZoë | Book a call: example.com/calendar"
            ),
            DraftType::Reply
        );
        // A question in the subject of a reply was our own.
        assert_eq!(
            kind("Re: Are you in?", "Sounds great, thank you!"),
            DraftType::ThankYou
        );
        // Curly apostrophes read like straight ones.
        assert_eq!(kind("", "Don’t forget the keys."), DraftType::Reminder);
        // Calendar invitations are invitations even though they are meetings.
        assert_eq!(
            kind(
                "Invitation: Weekly sync @ Tue 10am",
                "You have been invited to a meeting."
            ),
            DraftType::Invitation
        );
        // Delivered attachments win over asks.
        assert_eq!(
            kind(
                "",
                "Attached is the invoice. Could you send payment by Friday?"
            ),
            DraftType::Acknowledgment
        );
    }

    #[test]
    fn only_the_first_part_of_a_long_text_counts() {
        let text = format!("{}\nCould you send me the contract?", "word ".repeat(1000));
        assert_eq!(kind("", &text), DraftType::Reply);
        assert_eq!(text_excerpt(&"é".repeat(5000)).chars().count(), TEXT_LIMIT);
        assert_eq!(text_excerpt("short"), "short");
    }

    #[test]
    fn drafts_a_document_request() {
        let draft = builtin_draft(&request(
            "Re: Contract for March",
            "Hi Ann,\nCould you send me the signed contract?\nThanks,\nZoë",
        ));
        assert_eq!(draft.label, DraftLabel::known(DraftType::DocumentRequest));
        assert_eq!(draft.generator, "builtin");
        assert_eq!(
            draft.body,
            "Hi Zoë,\n\nThanks for your message about “Contract for March”. I'll get the contract you asked for over to you shortly.\n\nBest regards,\nAnn Example"
        );
    }

    #[test]
    fn drafts_quote_the_question() {
        let draft = builtin_draft(&request(
            "Venue",
            "Hello Ann,\nGreat news about the event. Is the venue wheelchair accessible? We have two guests who need it.",
        ));
        assert_eq!(draft.label.known_type(), Some(DraftType::Question));
        assert_eq!(
            draft.body,
            "Hi Zoë,\n\nThanks for your question about “Venue”. You asked: “Is the venue wheelchair accessible?” I'll look into it and get back to you with an answer soon.\n\nBest regards,\nAnn Example"
        );
    }

    #[test]
    fn drafts_without_names_or_subject() {
        let mut r = request("", "It was lovely to see you.");
        r.sender_name = None;
        r.sender_address = "info@example.com".into();
        r.owner_name = None;
        assert_eq!(
            builtin_draft(&r).body,
            "Hello,\n\nThanks for your message. I've read it and will get back to you properly soon.\n\nBest regards,"
        );
    }

    #[test]
    fn a_question_subject_is_not_repeated() {
        let draft = builtin_draft(&request("Pricing?", ""));
        assert_eq!(
            draft.label.known_type(),
            Some(DraftType::InformationRequest)
        );
        assert_eq!(
            draft.body,
            "Hi Zoë,\n\nThanks for getting in touch about “Pricing?”. I'll gather the details and send them over shortly.\n\nBest regards,\nAnn Example"
        );
    }

    #[test]
    fn invitation_names_the_event() {
        let draft = builtin_draft(&request(
            "Invitation: Team dinner @ Fri 7pm",
            "You're invited!",
        ));
        assert!(
            draft
                .body
                .contains("Thank you for the invitation to “Team dinner @ Fri 7pm”.")
        );
    }

    #[test]
    fn long_subjects_are_shortened() {
        let subject = format!("Re: {}", "budget planning ".repeat(20));
        let draft = builtin_draft(&request(&subject, "It was lovely to see you."));
        let quoted = draft
            .body
            .split('“')
            .nth(1)
            .unwrap()
            .split('”')
            .next()
            .unwrap();
        assert!(quoted.ends_with('…'), "{quoted}");
        assert!(quoted.chars().count() <= TOPIC_MAX_CHARS + 1, "{quoted}");
        assert!(quoted.starts_with("budget planning"));
        assert!(!quoted.contains("  "));
    }

    #[test]
    fn every_template_is_plain_one_paragraph_text() {
        let mut r = request("Weird\r\nsubject", "text\r\nwith CRs?\r\n");
        r.sender_name = Some("Zoë\r\nMartin".into());
        r.owner_name = Some("Ann\r\nExample".into());
        for kind in DraftType::ALL {
            for detail in [None, Some("What\r\nnow?".to_owned())] {
                let body = render(&Classification { kind, detail }, &r);
                assert!(!body.contains('\r'), "{kind}: {body:?}");
                assert!(body.starts_with("Hi Zoë,\n\n"), "{kind}: {body:?}");
                assert!(
                    body.ends_with("\n\nBest regards,\nAnn Example"),
                    "{kind}: {body:?}"
                );
                assert_eq!(body.matches('\n').count(), 5, "{kind}: {body:?}");
                assert!(body.contains("Weird subject"), "{kind}: {body:?}");
                assert!(!body.contains('<'), "{kind}: {body:?}");
            }
        }
    }

    #[test]
    fn builtin_is_deterministic() {
        let r = request("Plans", "How much does it cost?");
        assert_eq!(builtin_draft(&r), builtin_draft(&r));
    }
}
