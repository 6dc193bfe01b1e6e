"""Drive the Google sandbox with Google's own Python client library.

google-api-python-client, with the gmail.v1 discovery document it bundles
(static_discovery=True: no network), calls every Gmail method Mailwright
calls plus drafts.send, settings.sendAs.list and the batch endpoint, against
the sandbox at BASE with the access token TOKEN of mailbox EMAIL (whose inbox
holds at least one message). Prints one JSON line per probe and exits 0 only
when every probe passed.

    python3 probe.py BASE TOKEN EMAIL
"""

import base64
import json
import sys
import traceback
from email.message import EmailMessage

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest

BASE, TOKEN, EMAIL = sys.argv[1].rstrip("/") + "/", sys.argv[2], sys.argv[3]
TOPIC = "projects/mailwright-test/topics/gmail"

gmail = build(
    "gmail",
    "v1",
    credentials=Credentials(TOKEN),
    client_options={"api_endpoint": BASE},
    static_discovery=True,
    cache_discovery=False,
)
users = gmail.users()
results = []
state = {}


def raw(subject, to=EMAIL, in_reply_to=None):
    message = EmailMessage()
    message["From"] = EMAIL
    message["To"] = to
    message["Subject"] = subject
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content("Sent by Google's Python client.")
    return base64.urlsafe_b64encode(message.as_bytes()).decode()


def probe(name):
    def run(check):
        try:
            detail = check()
            results.append({"probe": name, "ok": True, "detail": detail})
        except Exception as error:  # noqa: BLE001 - every failure is a finding
            results.append(
                {
                    "probe": name,
                    "ok": False,
                    "detail": f"{type(error).__name__}: {error}",
                    "trace": traceback.format_exc(limit=3),
                }
            )
        return check

    return run


def header(message, name):
    for item in message["payload"].get("headers", []):
        if item["name"].lower() == name.lower():
            return item["value"]
    raise AssertionError(f"no {name} header")


@probe("users.getProfile")
def _():
    profile = users.getProfile(userId="me").execute()
    assert profile["emailAddress"] == EMAIL, profile
    state["history"] = profile["historyId"]
    return profile["historyId"]


@probe("users.labels.list")
def _():
    labels = users.labels().list(userId="me").execute()["labels"]
    assert any(label["id"] == "INBOX" for label in labels), labels
    return len(labels)


@probe("users.messages.list")
def _():
    listed = users.messages().list(userId="me", q="in:inbox", maxResults=10).execute()
    assert listed.get("messages"), listed
    state["message"] = listed["messages"][0]["id"]
    state["thread"] = listed["messages"][0]["threadId"]
    return len(listed["messages"])


@probe("users.messages.get full")
def _():
    message = users.messages().get(userId="me", id=state["message"], format="full").execute()
    state["message_id_header"] = header(message, "Message-ID")
    state["subject"] = header(message, "Subject")
    return state["subject"]


@probe("users.messages.get metadata")
def _():
    message = (
        users.messages()
        .get(userId="me", id=state["message"], format="metadata", metadataHeaders=["From", "Subject"])
        .execute()
    )
    return header(message, "From")


@probe("users.messages.get raw")
def _():
    message = users.messages().get(userId="me", id=state["message"], format="raw").execute()
    text = base64.urlsafe_b64decode(message["raw"] + "==").decode(errors="replace")
    assert "Subject:" in text, text[:200]
    return len(text)


@probe("users.threads.get")
def _():
    thread = (
        users.threads()
        .get(userId="me", id=state["thread"], format="metadata", metadataHeaders=["From"])
        .execute()
    )
    assert thread["messages"], thread
    return len(thread["messages"])


@probe("users.messages.send")
def _():
    sent = users.messages().send(userId="me", body={"raw": raw("Note to self")}).execute()
    assert "SENT" in sent["labelIds"], sent
    return sent["id"]


@probe("users.history.list")
def _():
    history = (
        users.history()
        .list(userId="me", startHistoryId=state["history"], historyTypes="messageAdded", labelId="INBOX")
        .execute()
    )
    added = [m for record in history.get("history", []) for m in record.get("messagesAdded", [])]
    assert added, history
    return len(added)


@probe("users.drafts.create")
def _():
    reply = raw("Re: " + state["subject"], in_reply_to=state["message_id_header"])
    draft = (
        users.drafts()
        .create(userId="me", body={"message": {"raw": reply, "threadId": state["thread"]}})
        .execute()
    )
    assert draft["message"]["threadId"] == state["thread"], draft
    state["draft"] = draft["id"]
    second = users.drafts().create(userId="me", body={"message": {"raw": raw("To be sent")}}).execute()
    state["draft_to_send"] = second["id"]
    return draft["id"]


@probe("users.drafts.list")
def _():
    drafts = users.drafts().list(userId="me").execute()["drafts"]
    assert any(d["id"] == state["draft"] for d in drafts), drafts
    return len(drafts)


@probe("users.drafts.get")
def _():
    draft = users.drafts().get(userId="me", id=state["draft"], format="full").execute()
    assert draft["message"]["threadId"] == state["thread"], draft
    return draft["id"]


@probe("users.drafts.send")
def _():
    sent = users.drafts().send(userId="me", body={"id": state["draft_to_send"]}).execute()
    assert "SENT" in sent["labelIds"], sent
    remaining = users.drafts().list(userId="me").execute().get("drafts", [])
    assert all(d["id"] != state["draft_to_send"] for d in remaining), remaining
    return sent["id"]


@probe("users.drafts.delete")
def _():
    answer = users.drafts().delete(userId="me", id=state["draft"]).execute()
    assert not answer, answer
    return "deleted"


@probe("users.watch")
def _():
    watch = (
        users.watch(
            userId="me",
            body={"topicName": TOPIC, "labelIds": ["INBOX"], "labelFilterBehavior": "include"},
        )
        .execute()
    )
    assert int(watch["expiration"]) > 0 and watch["historyId"], watch
    return watch["expiration"]


@probe("users.stop")
def _():
    answer = users.stop(userId="me").execute()
    assert not answer, answer
    return "stopped"


@probe("users.settings.sendAs.list")
def _():
    send_as = users.settings().sendAs().list(userId="me").execute()["sendAs"]
    primary = [alias for alias in send_as if alias.get("isPrimary")]
    assert primary and primary[0]["sendAsEmail"] == EMAIL, send_as
    return primary[0]["sendAsEmail"]


@probe("batch")
def _():
    answers = {}

    def collect(request_id, response, exception):
        answers[request_id] = exception or response

    # The discovery document's batch URI is Google's host; a client pointed
    # elsewhere names the endpoint, as Google documents it.
    batch = BatchHttpRequest(callback=collect, batch_uri=BASE + "batch/gmail/v1")
    batch.add(users.getProfile(userId="me"), request_id="profile")
    batch.add(users.messages().get(userId="me", id=state["message"], format="minimal"), request_id="message")
    batch.add(users.messages().get(userId="me", id="0000000000000000"), request_id="missing")
    batch.execute()
    assert answers["profile"]["emailAddress"] == EMAIL, answers
    assert answers["message"]["id"] == state["message"], answers
    missing = answers["missing"]
    assert getattr(getattr(missing, "resp", None), "status", None) == 404, missing
    return sorted(answers)


for result in results:
    print(json.dumps(result))
sys.exit(0 if all(result["ok"] for result in results) else 1)
