//! Tests of `drafting`.
use super::builtin::{Classification, TOPIC_MAX_CHARS, render};
use super::*;

fn request(subject: &str, text: &str) -> DraftRequest {
    DraftRequest {
        sender_name: Some("Zoë Martin".into()),
        sender_address: "zoe@example.com".into(),
        subject: subject.into(),
        text: text.into(),
        owner_name: Some("Ann Example".into()),
        owner_address: "ann@example.com".into(),
        earlier: Vec::new(),
        signature: None,
        instructions: None,
        style: None,
    }
}

#[test]
fn a_german_message_is_answered_in_german_and_other_languages_in_theirs() {
    let german = builtin_draft(&request(
        "Termin nächste Woche",
        "Hallo Ann, können wir uns nächste Woche zu einem Termin treffen? Viele Grüße, Zoë",
    ));
    assert_eq!(german.label.draft_type(), "scheduling");
    assert!(
        german
            .body
            .starts_with("Hallo Zoë,\n\nvielen Dank für Ihre Nachricht zu „Termin nächste Woche“."),
        "{}",
        german.body
    );
    assert!(
        german.body.ends_with("Viele Grüße\nAnn Example"),
        "{}",
        german.body
    );
    for (text, greeting) in [
        (
            "Bonjour Ann, pouvez-vous m'envoyer la facture ? Merci, cordialement",
            "Bonjour Zoë,",
        ),
        (
            "Hola Ann, ¿me puedes enviar la factura? Muchas gracias y saludos",
            "Hola Zoë:",
        ),
        (
            "Olá Ann, você pode me enviar a fatura? Muito obrigado, atenciosamente",
            "Olá Zoë,",
        ),
    ] {
        let draft = builtin_draft(&request("", text));
        assert!(draft.body.starts_with(greeting), "{}", draft.body);
        assert_eq!(draft.label.draft_type(), "document_request", "{text}");
    }
}

#[test]
fn a_signature_ends_the_draft_instead_of_the_name() {
    let mut signed = request("Hello", "Could you call me tomorrow?");
    signed.signature = Some("Ann Example\nHead of Sales, Example Ltd".into());
    let draft = builtin_draft(&signed);
    assert!(
        draft
            .body
            .ends_with("Best regards,\n\nAnn Example\nHead of Sales, Example Ltd"),
        "{}",
        draft.body
    );
    assert_eq!(draft.body.matches("Ann Example").count(), 1);
}

#[test]
fn quoted_history_is_left_out_of_earlier_messages() {
    let text =
        "Sounds good, Tuesday works.\n\nOn Mon, 2 Nov 2026 Ann wrote:\n> Shall we meet?\n> Ann";
    assert_eq!(without_quoted_history(text), "Sounds good, Tuesday works.");
    assert_eq!(
        without_quoted_history("> only quoted\nNew line"),
        "New line"
    );
    assert_eq!(
        without_quoted_history(&"x".repeat(EARLIER_TEXT_LIMIT + 10))
            .chars()
            .count(),
        EARLIER_TEXT_LIMIT + 1
    );
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
