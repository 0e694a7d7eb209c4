"""A deterministic sample company: its X activity and its support site's access log.

@acmecloud (brand) broadcasts and now and then retweets or quotes; @acmesupport posts how-tos
and answers customers who mention either account. The support site's access log is consistent
with that activity: visits referred by t.co follow the posts that link to the support site.
Customers also write @acmesupport direct messages (never @acmecloud), and the company's own
posts carry the private metrics an author's user-context token may read (non_public_metrics,
organic_metrics), their link clicks at least the t.co visits the access log holds for them.
Everything comes from ``random.Random(seed)`` and a few generators of their own seeded from it
(edits, DMs, private metrics, the log), so the output is byte-identical across runs.
"""

from __future__ import annotations

import gzip
import random
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path

SAMPLE_START: date = date(2026, 11, 2)
SAMPLE_DAYS: int = 7
BRAND = "acmecloud"
SUPPORT = "acmesupport"
SUPPORT_SITE_HOST = "support.acme.example"
COMPANY_SITE_HOST = "www.acme.example"

SUPPORT_SITE = f"https://{SUPPORT_SITE_HOST}"
COMPANY_SITE = f"https://{COMPANY_SITE_HOST}"
_TWITTER_EPOCH_MS = 1288834974657
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Relative activity per UTC hour, for customers and for support-site visitors.
_HOURS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 9, 9, 9, 8, 7, 6, 5, 4, 4, 3, 2)

_CUSTOMERS = (
    ("Dana Whitfield", "danawhit"),
    ("Priya Raman", "priya_builds"),
    ("Marco Bellini", "marcobellini"),
    ("Sam Okafor", "samokafor_dev"),
    ("Lena Vogel", "lenavogel"),
    ("Tom Hargreaves", "tomh_ops"),
    ("Aisha Khan", "aishakhan_io"),
    ("Jonas Berg", "jberg"),
    ("Keiko Tanaka", "keiko_t"),
    ("Rafael Souza", "rafasouza"),
    ("Chloe Martin", "chloe_codes"),
    ("Ben Adeyemi", "benadeyemi"),
    ("Nina Petrova", "ninapetrova"),
    ("Oscar Lindqvist", "oscarlq"),
    ("Hannah Cole", "hannahcole_"),
    ("Diego Ramirez", "diegoramirez"),
    ("Fatima Zahra", "fzahra_dev"),
    ("Liam O'Brien", "liamobrien"),
    ("Mei Chen", "meichen_data"),
    ("Arjun Mehta", "arjunmehta"),
    ("Sofia Rossi", "sofiarossi"),
    ("Kwame Mensah", "kwamemensah"),
    ("Emily Park", "emilypark"),
    ("Lukas Novak", "lukasnovak"),
    ("Grace Liu", "graceliu_pm"),
    ("Mateo Garcia", "mateogarcia"),
    ("Zoe Williams", "zoewill"),
    ("Ivan Horvat", "ivanhorvat"),
    ("Ama Owusu", "amaowusu"),
    ("Noah Fischer", "noahfischer"),
    ("Yuki Sato", "yukisato_"),
    ("Olivia Brown", "oliviab_sre"),
    ("Hugo Laurent", "hugolaurent"),
    ("Sara Nilsson", "saranilsson"),
    ("Daniel Kim", "danielkim_dev"),
    ("Ines Costa", "inescosta"),
    ("Tariq Hassan", "tariqhassan"),
    ("Megan Reilly", "meganreilly"),
    ("Pavel Dvorak", "paveldvorak"),
    ("Lucy Evans", "lucyevans_"),
)
_BIOS = (
    "Backend engineer. Coffee, Go and long walks.",
    "Building things on the internet. Opinions my own.",
    "SRE | on-call survivor | she/her",
    "Indie hacker shipping small SaaS apps.",
    "Data engineer. Pipelines all the way down.",
    "CTO at a 12-person startup.",
    "Frontend dev, design nerd.",
    "DevOps consultant. Terraform whisperer.",
)

_ARTICLES = (
    "reset-password",
    "two-factor-auth",
    "sso-setup",
    "billing-faq",
    "download-invoices",
    "change-plan",
    "api-rate-limits",
    "api-keys",
    "webhooks",
    "cli-install",
    "export-data",
    "backup-restore",
    "custom-domains",
    "dns-verification",
    "team-invites",
    "storage-quotas",
    "status-incidents",
    "delete-account",
    "mobile-app-login",
    "deploy-troubleshooting",
)
_GONE = ("legacy-billing-portal", "v1-api-deprecation", "old-pricing")  # answer 404

# Customer issue addressed to support: (text, article slug, advice given in the answer).
_ISSUES = (
    (
        "can't log in, the password reset email never arrives",
        "reset-password",
        "Please check spam and request a new link, it expires after 30 minutes.",
    ),
    (
        "my 2FA codes are rejected since I changed phones",
        "two-factor-auth",
        "You can sign in with a recovery code, then enroll the new phone.",
    ),
    (
        "SSO with Okta keeps bouncing me back to the login page",
        "sso-setup",
        "Please double-check that the ACS URL in your IdP matches your workspace.",
    ),
    (
        "why was I charged twice this month?",
        "billing-faq",
        "We've refunded the duplicate charge, it shows up within 3-5 days.",
    ),
    (
        "where do I download invoices for my accountant?",
        "download-invoices",
        "Invoices live under Settings > Billing > History.",
    ),
    (
        "getting 429 errors from the API all of a sudden",
        "api-rate-limits",
        "Your plan's limits were raised today; make sure your client backs off on 429s.",
    ),
    (
        "webhooks stopped firing for our production project",
        "webhooks",
        "We had a delivery delay earlier, retries are going out now.",
    ),
    (
        "the CLI install fails on Apple Silicon",
        "cli-install",
        "The universal build fixes this, please reinstall with the script in our guide.",
    ),
    (
        "how do I export all my data before a migration?",
        "export-data",
        "Exports are under Settings > Data and include everything.",
    ),
    (
        "restore from backup has been stuck at 90% for an hour",
        "backup-restore",
        "Large restores pause at 90% while indexes rebuild, it should finish shortly.",
    ),
    (
        "custom domain shows a certificate error",
        "custom-domains",
        "Certificates are issued up to an hour after DNS verifies.",
    ),
    (
        "DNS verification says record not found but it's there",
        "dns-verification",
        "Make sure the TXT record is on the root domain, not on www.",
    ),
    (
        "invites to my team never arrive",
        "team-invites",
        "Invites sometimes land in spam; you can also copy the invite link.",
    ),
    (
        "storage says full but I deleted a ton of files",
        "storage-quotas",
        "Deleted files stay in trash for 30 days and still count toward the quota.",
    ),
    (
        "is something down? the dashboard won't load",
        "status-incidents",
        "We're investigating elevated errors, updates are on our status page.",
    ),
    (
        "the mobile app logs me out every single day",
        "mobile-app-login",
        "Please update to the latest app version, this was fixed this week.",
    ),
    (
        "deploys failing with exit code 137",
        "deploy-troubleshooting",
        "Exit 137 means the build ran out of memory, a bigger build size fixes it.",
    ),
)
_ISSUE_FORMS = ("@{s} {i}", "hey @{s} {i}", "@{s} help! {i}", "@{s} {i} any ideas?", "@{s} {i} 😩")
_OPENERS = ("Sorry about that!", "Thanks for flagging.", "Happy to help!", "Sorry for the trouble.")
_FOLLOW_UPS = (
    ("that worked, thanks!", "Glad to hear it! 🙌"),
    ("thanks, will try that", "Let us know how it goes!"),
    ("still not working for me", "Sorry to hear that, we've escalated it and will follow up here."),
    ("sent you a DM with the details", "Got it, replying there now."),
)
# Customer posts addressed to the brand: (text, brand reply or None when support answers).
_BRAND_MENTIONS = (
    ("the new dashboard on @{b} is so much faster, nice work", "Thank you, {n}! Means a lot 💙"),
    ("just moved our side project to @{b}, smooth so far", "Welcome aboard, {n}! 🚀"),
    ("@{b} is there a discount for students?", "Hi {n}! Yes, there's an education plan."),
    ("@{b} do you have a region in Australia yet?", "Not yet, {n}, Sydney is on the roadmap."),
    ("third outage this month @{b}, not great", None),
    ("@{b} billing page shows the wrong currency", None),
    ("shoutout to @{b} support, fixed my issue in minutes", "That's what we like to hear, {n}!"),
    ("@{b} any plans for a Terraform provider?", "It's in beta, {n}! Docs on our site."),
)
_QUOTES = ("This is why we do it 💙", "Love seeing this!", "Thanks for sharing, {n}!")
# Brand broadcasts: (text, linked URL or None).
_BRAND_POSTS = (
    (
        "New: scheduled backups on every plan. Set them up in two minutes:",
        f"{SUPPORT_SITE}/articles/backup-restore",
    ),
    (
        "Custom domains now get automatic HTTPS. Connect yours:",
        f"{SUPPORT_SITE}/articles/custom-domains",
    ),
    ("Tip: invite your whole team in one go.", f"{SUPPORT_SITE}/articles/team-invites"),
    ("Our CLI now ships native Apple Silicon builds.", f"{SUPPORT_SITE}/articles/cli-install"),
    ("Webhooks now retry with exponential backoff. Details:", f"{SUPPORT_SITE}/articles/webhooks"),
    (
        "Two-factor auth takes 30 seconds to set up. Turn it on:",
        f"{SUPPORT_SITE}/articles/two-factor-auth",
    ),
    ("API keys can now be scoped per project.", f"{SUPPORT_SITE}/articles/api-keys"),
    ("Moving from another provider? Our export guide:", f"{SUPPORT_SITE}/articles/export-data"),
    ("We're hiring SREs in Lisbon and Toronto!", f"{COMPANY_SITE}/careers"),
    ("Pricing just got simpler: one plan per team size.", f"{COMPANY_SITE}/pricing"),
    (
        "How Northwind cut deploy times by 60% on AcmeCloud",
        f"{COMPANY_SITE}/blog/northwind-case-study",
    ),
    ("Happy Monday! What are you shipping this week? 🚀", None),
    ("Thanks to everyone who joined our webinar on zero-downtime deploys!", None),
    ("Fun fact: AcmeCloud served 2 billion requests yesterday.", None),
)
# Support broadcasts: (text, article slug or None).
_SUPPORT_POSTS = (
    ("How to reset your password when the email doesn't arrive:", "reset-password"),
    ("Locked out after changing phones? Recovery codes to the rescue:", "two-factor-auth"),
    ("Setting up SSO with Okta, Entra ID or Google Workspace:", "sso-setup"),
    ("Hitting 429s? Here's how our API rate limits work:", "api-rate-limits"),
    ("Where to find and download your invoices:", "download-invoices"),
    ("Builds failing with exit code 137? It's likely memory. The fix:", "deploy-troubleshooting"),
    ("Custom domain not verifying? Check your DNS records:", "dns-verification"),
    ("Support hours: 24/7 on Pro, 7am-11pm UTC for everyone else. DMs are open!", None),
    ("We're seeing elevated API errors in eu-west and are on it.", "status-incidents"),
)
_THREAD_TAIL = "2/2 Still stuck? Reply here or DM us and we'll take a look."


@dataclass(frozen=True)
class SampleCompany:
    users: list[dict]
    tweets: list[dict]
    dm_events: list[dict] = field(default_factory=list)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_stamp(text: str) -> datetime:
    """Parse an X API created_at ("2026-11-02T09:14:03.000Z") into an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _at_hour(rng: random.Random, day: datetime) -> datetime:
    hour = rng.choices(range(24), weights=_HOURS)[0]
    return day + timedelta(hours=hour, seconds=rng.randrange(3600))


class _Builder:
    """Creates tweets with snowflake-like ids and keeps only those inside [lo, hi)."""

    def __init__(self, rng: random.Random, start: date, days: int) -> None:
        self.rng = rng
        self.lo = datetime.combine(start, time(), UTC)
        self.hi = self.lo + timedelta(days=days)
        self.seq = 0
        self.ids: set[int] = set()
        self.codes: set[str] = set()
        self.tweets: list[dict] = []
        self.users = self._users()
        self.by_name = {u["username"]: u for u in self.users}

    def snowflake(self, when: datetime) -> str:
        """An id like X's: milliseconds since the X epoch, then worker and sequence bits."""
        while True:
            self.seq = (self.seq + 1) % 4096
            ms = int(when.timestamp()) * 1000 + self.rng.randrange(1000)
            number = ((ms - _TWITTER_EPOCH_MS) << 22) | (self.rng.randrange(1024) << 12) | self.seq
            if number not in self.ids:
                self.ids.add(number)
                return str(number)

    def _users(self) -> list[dict]:
        rng = self.rng
        brand = {
            "id": "1488213377",
            "name": "AcmeCloud",
            "username": BRAND,
            "created_at": "2013-06-04T15:22:41.000Z",
            "description": "The cloud for small teams. Need help? @acmesupport",
            "url": COMPANY_SITE + "/",
            "public_metrics": {},
            "verified": True,
            "protected": False,
        }
        support = {
            "id": "2901446150",
            "name": "AcmeCloud Support",
            "username": SUPPORT,
            "created_at": "2014-12-01T09:05:12.000Z",
            "description": "Official support for @acmecloud. 24/7 on Pro plans.",
            "url": SUPPORT_SITE + "/",
            "public_metrics": {},
            "verified": True,
            "protected": False,
        }
        users = [brand, support]
        for name, username in _CUSTOMERS:
            created = datetime(2008, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(16 << 25))
            old = created.year < 2016
            users.append(
                {
                    "id": str(rng.randrange(10**7, 4 * 10**9)) if old else self.snowflake(created),
                    "name": name,
                    "username": username,
                    "created_at": _stamp(created),
                    "description": rng.choice(_BIOS),
                    "public_metrics": {},
                    "verified": rng.random() < 0.1,
                    "protected": False,
                }
            )
        for user in users:
            followers = {BRAND: 48210, SUPPORT: 12950}.get(user["username"])
            followers = followers or int(rng.paretovariate(1.2) * 80)
            user["public_metrics"] = {
                "followers_count": followers,
                "following_count": rng.randrange(40, 900),
                "tweet_count": rng.randrange(300, 20000),
                "listed_count": followers // rng.randrange(40, 120),
                "like_count": rng.randrange(100, 30000),
            }
        return users

    def tco(self) -> str:
        while True:
            code = "".join(self.rng.choices(string.ascii_letters + string.digits, k=10))
            if code not in self.codes:
                self.codes.add(code)
                return f"https://t.co/{code}"

    def post(
        self,
        author: dict,
        when: datetime,
        text: str,
        *,
        impressions: int,
        link: str | None = None,
        reply_to: dict | None = None,
        ref: tuple[str, dict] | None = None,
    ) -> dict | None:
        if not self.lo <= when < self.hi:
            return None
        rng = self.rng
        urls: list[dict] = []
        if ref is not None and ref[0] == "retweeted":
            shift = len(text) - len(ref[1]["text"])
            urls = [
                dict(u, start=u["start"] + shift, end=u["end"] + shift)
                for u in ref[1].get("entities", {}).get("urls", [])
            ]
        if link is not None:
            short = self.tco()
            display = link.removeprefix("https://")
            display = display if len(display) <= 26 else display[:25] + "…"
            start = len(text) + 1
            text = f"{text} {short}"
            urls.append(
                {
                    "start": start,
                    "end": len(text),
                    "url": short,
                    "expanded_url": link,
                    "display_url": display,
                }
            )
        tweet_id = self.snowflake(when)
        tweet: dict = {
            "id": tweet_id,
            "text": text,
            "created_at": _stamp(when),
            "author_id": author["id"],
            "conversation_id": tweet_id,
            "lang": "en",
            "edit_history_tweet_ids": [tweet_id],
        }
        if reply_to is not None:
            tweet["conversation_id"] = reply_to["conversation_id"]
            tweet["in_reply_to_user_id"] = reply_to["author_id"]
            ref = ("replied_to", reply_to)
        if ref is not None:
            tweet["referenced_tweets"] = [{"type": ref[0], "id": ref[1]["id"]}]
        entities: dict = {}
        mentions = [
            {"start": m.start(), "end": m.end(), "username": m[1], "id": self.by_name[m[1]]["id"]}
            for m in re.finditer(r"@(\w{1,15})", text)
            if m[1] in self.by_name
        ]
        if mentions:
            entities["mentions"] = mentions
        if urls:
            entities["urls"] = urls
        if entities:
            tweet["entities"] = entities
        likes = int(impressions * rng.uniform(0.004, 0.03))
        tweet["public_metrics"] = {
            "retweet_count": int(likes * rng.uniform(0.05, 0.3)),
            "reply_count": 0,
            "like_count": likes,
            "quote_count": int(likes * rng.uniform(0.0, 0.05)),
            "bookmark_count": int(likes * rng.uniform(0.0, 0.2)),
            "impression_count": impressions,
        }
        self.tweets.append(tweet)
        return tweet


def _response_delay(rng: random.Random) -> timedelta:
    r = rng.random()
    if r < 0.35:
        return timedelta(seconds=rng.randrange(120, 1800))
    if r < 0.65:
        return timedelta(seconds=rng.randrange(1800, 7200))
    if r < 0.9:
        return timedelta(seconds=rng.randrange(7200, 36000))
    return timedelta(seconds=rng.randrange(36000, 30 * 3600))


def _conversation(b: _Builder, customer: dict, day: datetime) -> dict | None:
    """One customer mention of the brand or support, with whatever answers it gets."""
    rng = b.rng
    brand, support = b.by_name[BRAND], b.by_name[SUPPORT]
    first = customer["name"].split()[0]
    when = _at_hour(rng, day)
    impressions = rng.randrange(40, 1500)
    slug = None
    if rng.random() < 0.75:
        issue, slug, advice = rng.choice(_ISSUES)
        text = rng.choice(_ISSUE_FORMS).format(s=SUPPORT, i=issue)
        mention = b.post(customer, when, text, impressions=impressions)
        responder = support if rng.random() < 0.88 else None
        answer = f"{rng.choice(_OPENERS)} {advice}"
    else:
        text, brand_answer = rng.choice(_BRAND_MENTIONS)
        mention = b.post(customer, when, text.format(b=BRAND), impressions=impressions)
        if brand_answer is not None:
            responder = brand if rng.random() < 0.55 else None
            answer = brand_answer.format(n=first)
        else:
            responder = support if rng.random() < 0.8 else None
            answer = f"{rng.choice(_OPENERS)} Could you DM us your account email? We'll dig in."
    if mention is None or responder is None:
        return mention
    link = f"{SUPPORT_SITE}/articles/{slug}" if slug and rng.random() < 0.5 else None
    greeting = f"Hi {first}! " if responder is support else ""
    reply = b.post(
        responder,
        when + _response_delay(rng),
        f"@{customer['username']} {greeting}{answer}",
        impressions=rng.randrange(20, 300),
        link=link,
        reply_to=mention,
    )
    if reply is None or responder is brand or rng.random() > 0.35:
        return mention
    said, closing = rng.choice(_FOLLOW_UPS)
    back_at = parse_stamp(reply["created_at"]) + timedelta(seconds=rng.randrange(180, 3 * 3600))
    text = f"@{responder['username']} {said}"
    back = b.post(customer, back_at, text, impressions=rng.randrange(20, 200), reply_to=reply)
    if back is not None and rng.random() < 0.6:
        at = parse_stamp(back["created_at"]) + timedelta(seconds=rng.randrange(120, 5400))
        text = f"@{customer['username']} {closing}"
        b.post(responder, at, text, impressions=rng.randrange(10, 120), reply_to=back)
    return mention


def generate(seed: int = 7, start: date = SAMPLE_START, days: int = SAMPLE_DAYS) -> SampleCompany:
    """The sample company's users, posts and direct messages over [start, start + days) UTC."""
    company = _public(seed, start, days)
    clicks = _link_clicks(seed, start, days)
    _private_metrics(company, clicks, random.Random(f"{seed}-private-metrics"))
    dm_events = _dm_events(company, random.Random(f"{seed}-dm"), start, days)
    return SampleCompany(company.users, company.tweets, dm_events)


def _public(seed: int, start: date, days: int) -> SampleCompany:
    """The users and posts as X shows them to anyone (public fields only)."""
    rng = random.Random(seed)
    b = _Builder(rng, start, days)
    brand, support = b.by_name[BRAND], b.by_name[SUPPORT]
    customers = b.users[2:]
    names = {u["id"]: u["name"] for u in b.users}
    activity = [rng.paretovariate(1.5) for _ in customers]  # a few customers post a lot
    for d in range(days):
        day = b.lo + timedelta(days=d)
        for _ in range(rng.randint(3, 5)):
            text, link = rng.choice(_BRAND_POSTS)
            when = day + timedelta(seconds=rng.randrange(8 * 3600, 20 * 3600))
            b.post(brand, when, text, impressions=rng.randrange(2000, 15000), link=link)
        howtos = []
        for _ in range(rng.randint(1, 2)):
            text, slug = rng.choice(_SUPPORT_POSTS)
            when = day + timedelta(seconds=rng.randrange(7 * 3600, 21 * 3600))
            link = f"{SUPPORT_SITE}/articles/{slug}" if slug else None
            post = b.post(support, when, text, impressions=rng.randrange(500, 4000), link=link)
            if post is not None and rng.random() < 0.3:
                at = when + timedelta(seconds=rng.randrange(30, 240))
                b.post(
                    support, at, _THREAD_TAIL, impressions=rng.randrange(100, 900), reply_to=post
                )
            if post is not None and link is not None:
                howtos.append(post)
        praise = []
        for _ in range(rng.randint(12, 25)):
            customer = rng.choices(customers, weights=activity)[0]
            mention = _conversation(b, customer, day)
            if mention is not None and mention["text"].startswith(("the new", "shoutout")):
                praise.append(mention)
        if howtos and rng.random() < 0.4:
            post = rng.choice(howtos)
            at = parse_stamp(post["created_at"]) + timedelta(seconds=rng.randrange(300, 7200))
            b.post(
                brand, at, f"RT @{SUPPORT}: {post['text']}", impressions=0, ref=("retweeted", post)
            )
        if praise and rng.random() < 0.35:
            quoted = rng.choice(praise)
            first = names[quoted["author_id"]].split()[0]
            text = rng.choice(_QUOTES).format(n=first)
            at = parse_stamp(quoted["created_at"]) + timedelta(seconds=rng.randrange(600, 14400))
            b.post(brand, at, text, impressions=rng.randrange(2000, 9000), ref=("quoted", quoted))
    tweets = sorted(b.tweets, key=lambda t: int(t["id"]))
    by_id = {t["id"]: t for t in tweets}
    for tweet in tweets:
        for ref in tweet.get("referenced_tweets", []):
            metrics = by_id[ref["id"]]["public_metrics"]
            key = {"replied_to": "reply_count", "retweeted": "retweet_count"}.get(ref["type"])
            metrics[key or "quote_count"] += 1
        if tweet["text"].startswith("RT @"):
            tweet["public_metrics"] = dict.fromkeys(tweet["public_metrics"], 0)
    b.rng = random.Random(f"edits/{seed}")  # edits do not disturb anything generated above
    tweets = sorted(tweets + _edits(b, tweets), key=lambda t: int(t["id"]))
    return SampleCompany(users=b.users, tweets=tweets)


def latest_versions(tweets: list[dict]) -> list[dict]:
    """The tweets that are the latest version of their edit chain (what timelines serve)."""
    superseded = {old for t in tweets for old in t["edit_history_tweet_ids"][:-1]}
    return [t for t in tweets if t["id"] not in superseded]


def _typo(rng: random.Random, text: str) -> str | None:
    """The text with two letters of one word swapped (same length: entities stay valid)."""
    head = text.split("https://")[0]
    words = [m for m in re.finditer(r"\b[a-z]{5,}\b", head) if m[0][2] != m[0][3]]
    if not words:
        return None
    word = rng.choice(words)
    at = word.start() + 2
    return text[:at] + text[at + 1] + text[at] + text[at + 2 :]


def _edits(b: _Builder, tweets: list[dict]) -> list[dict]:
    """Edit three broadcasts minutes after posting (X allows 30 minutes, 5 edits): two of the
    brand's and one of support's, each posted with a typo that its edit fixes; the first brand
    post is edited twice. Every version carries the full edit_history_tweet_ids; the original
    keeps the engagement of its first minutes, the latest version the rest.
    Returns the new versions (the originals are changed in place)."""
    rng = b.rng
    referenced = {r["id"] for t in tweets for r in t.get("referenced_tweets", [])}
    chosen: list[dict] = []
    for username, count in ((BRAND, 2), (SUPPORT, 1)):
        candidates = [
            t
            for t in tweets
            if t["author_id"] == b.by_name[username]["id"]
            and "referenced_tweets" not in t
            and t["id"] not in referenced
            and parse_stamp(t["created_at"]) + timedelta(minutes=30) < b.hi
        ]
        distinct = list({t["text"]: t for t in reversed(candidates)}.values())  # one per text
        chosen += rng.sample(distinct, min(count, len(distinct)))
    versions = []
    for n, original in enumerate(chosen):
        typo = _typo(rng, original["text"])
        if typo is None:
            continue
        posted = parse_stamp(original["created_at"])
        texts = [typo, original["text"]] + ([original["text"] + " 🎉"] if n == 0 else [])
        delays = sorted(rng.sample(range(60, 29 * 60), len(texts) - 1))
        chain = [original]
        for text, delay in zip(texts[1:], delays, strict=True):
            when = posted + timedelta(seconds=delay)
            chain.append(dict(original, id=b.snowflake(when), created_at=_stamp(when), text=text))
        metrics = original["public_metrics"]
        ids = [t["id"] for t in chain]
        for k, version in enumerate(chain):
            share = rng.uniform(0.02, 0.1)
            version["public_metrics"] = (
                dict(metrics)
                if k == len(chain) - 1
                else {key: int(value * share) for key, value in metrics.items()}
            )
            version["edit_history_tweet_ids"] = list(ids)
        original["text"] = typo
        versions += chain[1:]
    return versions


# --- support-site access log ---------------------------------------------------------------

_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    'Chrome/129.0.0.0 Safari/537.36 "CorpProxy/2.3"',
)
_MOBILE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
)
_X_APP = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/22B83 Twitter for iPhone/10.68",
)
_GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
_AHREFS = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
_TWITTERBOT = "Twitterbot/1.0"
_FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
_LINKEDIN = "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
_SCANNER = "Mozilla/5.0 zgrab/0.x"
_STATIC = {"/static/app.css": 18342, "/static/app.js": 48211, "/favicon.ico": 1150}
_SEARCHES = (
    "reset+password",
    "invoice",
    "sso",
    "rate+limit",
    "export",
    "2fa",
    "custom+domain",
    "webhook+retries",
    "delete+account",
    "cli",
)
# Entry referrers of sessions that do not come from a post, with their weights.
_SOURCES = (
    ("https://www.google.com/", 30),
    ("https://www.bing.com/", 5),
    ("https://duckduckgo.com/", 3),
    ("company", 13),
    ("https://mail.google.com/", 3),
    ("newsletter", 4),
    ("https://chatgpt.com/", 3),
    ("https://www.perplexity.ai/", 1),
    ("https://x.com/", 2),
    ("https://twitter.com/", 1),
    ("-", 18),
)


class _Log:
    def __init__(self, rng: random.Random, lo: datetime, hi: datetime) -> None:
        self.rng, self.lo, self.hi = rng, lo, hi
        self.entries: list[tuple[datetime, int, str]] = []
        self.sizes: dict[str, int] = {}

    def hit(
        self,
        when: datetime,
        ip: str,
        method: str,
        path: str,
        status: int,
        ref: str,
        ua: str,
        protocol: str = "HTTP/1.1",
    ) -> None:
        if not self.lo <= when < self.hi:
            return
        base = path.split("?")[0]
        if status in (200, 206):
            if base not in self.sizes:
                self.sizes[base] = _STATIC.get(base) or self.rng.randrange(4000, 24000)
            size = str(self.sizes[base] + (0 if base in _STATIC else self.rng.randrange(-60, 60)))
        else:
            size = {304: "-", 302: "229", 404: "1532", 500: "612"}[status]
        stamp = f"{when.day:02d}/{_MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S} +0000"
        agent = ua.replace("\\", "\\\\").replace('"', '\\"')
        line = f'{ip} - - [{stamp}] "{method} {path} {protocol}" {status} {size} "{ref}" "{agent}"'
        self.entries.append((when, len(self.entries), line))

    def visitor(self, ua_pool: tuple[str, ...]) -> tuple[str, str]:
        rng = self.rng
        if rng.random() < 0.08:
            ip = f"2001:db8:{rng.randrange(1, 0x10000):x}::{rng.randrange(1, 0x10000):x}"
        else:
            ip = f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randrange(1, 255)}"
        return ip, rng.choice(ua_pool)

    def session(
        self, when: datetime, ref: str, path: str, ua_pool: tuple[str, ...], ip: str = ""
    ) -> None:
        """A human visit: 1-6 page views, assets with the first, maybe a contact form post."""
        rng = self.rng
        if ip:
            ua = rng.choice(ua_pool)
        else:
            ip, ua = self.visitor(ua_pool)
        returning = ref in ("-", f"{COMPANY_SITE}/") and rng.random() < 0.5
        for i in range(rng.choices(range(1, 7), weights=(38, 25, 15, 10, 7, 5))[0]):
            slug = path.split("?")[0].removeprefix("/articles/")
            status = 404 if slug in _GONE else 200
            if path.startswith("/search") and rng.random() < 0.03:
                status = 500
            self.hit(when, ip, "GET", path, status, ref, ua)
            page = SUPPORT_SITE + path
            if i == 0:
                for k, asset in enumerate(_STATIC):
                    at = when + timedelta(seconds=k // 2)
                    self.hit(at, ip, "GET", asset, 304 if returning else 200, page, ua)
            if path == "/contact" and rng.random() < 0.4:
                when += timedelta(seconds=rng.randrange(40, 400))
                self.hit(when, ip, "POST", "/contact", 302, page, ua)
                self.hit(when + timedelta(seconds=1), ip, "GET", "/contact?sent=1", 200, page, ua)
                return
            ref, when = page, when + timedelta(seconds=rng.randrange(8, 240))
            path = rng.choices(
                (
                    f"/articles/{rng.choice(_ARTICLES)}",
                    f"/search?q={rng.choice(_SEARCHES)}",
                    "/",
                    "/contact",
                ),
                weights=(60, 18, 10, 12),
            )[0]

    def crawl(self, when: datetime, ua: str, ip: str) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            self.hit(when, ip, "GET", "/robots.txt", 200, "-", ua)
        elif r < 0.15:
            self.hit(when, ip, "GET", "/sitemap.xml", 200, "-", ua)
        elif r < 0.25:
            self.hit(when, ip, "GET", "/", 200, "-", ua)
        elif r < 0.3:
            self.hit(when, ip, "GET", f"/articles/{rng.choice(_GONE)}", 404, "-", ua)
        else:
            status = 304 if rng.random() < 0.3 else 200
            self.hit(when, ip, "GET", f"/articles/{rng.choice(_ARTICLES)}", status, "-", ua)


def _landing(rng: random.Random, ref: str) -> tuple[str, str]:
    """The entry page and the referrer actually sent, for a session of a given source."""
    article = f"/articles/{rng.choice(_ARTICLES)}"
    if ref == "newsletter":
        return f"{article}?utm_source=newsletter&utm_medium=email&utm_campaign=2026-11", "-"
    if ref == "company":
        page = rng.choice(("/", "/pricing", "/docs", "/login", "/blog/northwind-case-study"))
        return rng.choice((article, article, "/", "/contact")), COMPANY_SITE + page
    if ref in ("-", "https://x.com/", "https://twitter.com/"):
        return rng.choice((article, "/", "/", "/contact")), ref
    if "google" in ref and rng.random() < 0.05:
        return f"/articles/{rng.choice(_GONE)}", ref  # a stale search result
    return (article if rng.random() < 0.85 else "/"), ref


def _access_log(
    company: SampleCompany, seed: int, start: date, days: int
) -> list[tuple[datetime, str]]:
    rng = random.Random(f"access-log/{seed}")
    lo = datetime.combine(start, time(), UTC)
    log = _Log(rng, lo, lo + timedelta(days=days))
    human = _DESKTOP + _MOBILE
    for d in range(days):
        day = lo + timedelta(days=d)
        for _ in range(rng.randrange(270, 340)):
            source = rng.choices([s for s, _ in _SOURCES], weights=[w for _, w in _SOURCES])[0]
            path, ref = _landing(rng, source)
            log.session(_at_hour(rng, day), ref, path, human)
        for network, bot in (("https://l.facebook.com/", _FACEBOOK), ("linkedin", _LINKEDIN)):
            for _ in range(rng.randint(0, 2)):  # somebody shares an article there
                shared = _at_hour(rng, day)
                path = f"/articles/{rng.choice(_ARTICLES)}"
                log.hit(shared, f"192.0.2.{rng.randrange(200, 210)}", "GET", path, 200, "-", bot)
                for _ in range(rng.randint(2, 10)):
                    at = shared + timedelta(seconds=int(rng.expovariate(1 / 10800)) + 30)
                    ref = network
                    if network == "linkedin":
                        ref = rng.choice(("https://www.linkedin.com/", "https://lnkd.in/"))
                    log.session(at, ref, path, human)
        for ua, ip, n in ((_GOOGLEBOT, "203.0.113.66", 120), (_BINGBOT, "198.51.100.77", 60)):
            for _ in range(rng.randrange(n * 3 // 4, n * 5 // 4)):
                log.crawl(day + timedelta(seconds=rng.randrange(86400)), ua, ip)
        for _ in range(rng.randint(1, 2)):
            at = day + timedelta(seconds=rng.randrange(86400))
            for _ in range(rng.randrange(20, 40)):
                at += timedelta(seconds=rng.randrange(2, 6))
                log.crawl(at, _AHREFS, "198.51.100.201")
        for path in rng.sample(("/wp-login.php", "/.env", "/admin/config.php", "/.git/config"), 2):
            log.hit(
                day + timedelta(seconds=rng.randrange(86400)),
                "203.0.113.250",
                "GET",
                path,
                404,
                "-",
                _SCANNER,
            )
    by_id = {t["id"]: t for t in company.tweets}
    for tweet in company.tweets:
        history = tweet["edit_history_tweet_ids"]
        if tweet["id"] != history[0]:
            continue  # a later version of an edited post: its clicks are the original's
        posted = parse_stamp(tweet["created_at"])
        metrics = by_id.get(history[-1], tweet)["public_metrics"]
        for url in tweet.get("entities", {}).get("urls", []):
            if not url["expanded_url"].startswith(SUPPORT_SITE + "/"):
                continue
            path = url["expanded_url"].removeprefix(SUPPORT_SITE)
            retweet = any(r["type"] == "retweeted" for r in tweet.get("referenced_tweets", []))
            if not retweet:  # X fetches the card preview right away
                at = posted + timedelta(seconds=rng.randrange(1, 6))
                log.hit(at, "192.0.2.199", "GET", "/robots.txt", 200, "-", _TWITTERBOT)
                log.hit(
                    at + timedelta(seconds=1), "192.0.2.199", "GET", path, 200, "-", _TWITTERBOT
                )
            impressions = metrics["impression_count"] or rng.randrange(1500, 6000)
            clicks = round(impressions * rng.uniform(0.0015, 0.0035))
            if "in_reply_to_user_id" in tweet and rng.random() < 0.7:
                clicks += 1  # the customer who was answered opens the article
            for _ in range(clicks):
                at = posted + timedelta(seconds=int(rng.expovariate(1 / 5400)) + 5)
                log.session(at, url["url"], path, _MOBILE + _MOBILE + _X_APP + _DESKTOP)
    _uncredited_visits(log, company, lo, days, seed)
    _excluded_traffic(log, lo, days, seed)
    return [(when, line) for when, _, line in sorted(log.entries)]


def _uncredited_visits(
    log: _Log, company: SampleCompany, lo: datetime, days: int, seed: int
) -> None:
    """X-referred visits that per-post link attribution must not credit to the post they come
    from: clicks on an own post found more than 24 hours after it was posted (credited to a
    newer post linking the same page, if there is one), and clicks on links to the support
    site that people outside the sample shared (t.co links of no sample post), mostly to pages
    no own post linked that day. A random generator of their own, so every line above stays
    as it was."""
    rng = log.rng = random.Random(f"uncredited-visits/{seed}")
    pool = _MOBILE + _MOBILE + _X_APP + _DESKTOP
    linked = [
        (parse_stamp(tweet["created_at"]), url)
        for tweet in company.tweets
        if tweet["id"] == tweet["edit_history_tweet_ids"][0]
        and not any(r["type"] == "retweeted" for r in tweet.get("referenced_tweets", []))
        for url in tweet.get("entities", {}).get("urls", [])
        if url["expanded_url"].startswith(SUPPORT_SITE + "/")
    ]
    for posted, url in rng.sample(linked, len(linked) // 4):
        at = posted + timedelta(seconds=rng.randrange(24 * 3600 + 60, 60 * 3600))
        log.session(at, url["url"], url["expanded_url"].removeprefix(SUPPORT_SITE), pool)
    codes = {
        url["url"] for tweet in company.tweets for url in tweet.get("entities", {}).get("urls", [])
    }
    for d in range(days):
        for _ in range(rng.randint(2, 4)):
            code = "https://t.co/" + "".join(
                rng.choices(string.ascii_letters + string.digits, k=10)
            )
            if code in codes:
                continue
            at = _at_hour(rng, lo + timedelta(days=d))
            log.session(at, code, f"/articles/{rng.choice(_ARTICLES)}", pool)


# a crawler that passes for a browser (seen fetching /robots.txt 123 times in a real log)
_DISGUISED = (
    "Mozilla/5.0 (compatible; Windows; U; Windows NT 6.2; en-US; rv:12.0) Gecko/20120403211507 "
    "Firefox/12.0"
)
_QUIET_CRAWLER = "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"
STAFF_NETWORK = "10.20.0.0/16"  # the company's own offices (SUPPORT_SITE_INTERNAL_NETWORKS)


def _excluded_traffic(log: _Log, lo: datetime, days: int, seed: int) -> None:
    """Traffic no person makes from outside, each day: three programs with a browser's user
    agent (one fetches /robots.txt, one scrapes pages faster than anybody reads, one reads
    many pages and never a style sheet or an image), the staff's visits from
    STAFF_NETWORK, and the web server's own requests (health checks from 127.0.0.1,
    Apache's internal dummy connections from ::1). A random generator of their own, so
    every line above stays as it was."""
    rng = log.rng = random.Random(f"excluded-traffic/{seed}")
    articles = [f"/articles/{slug}" for slug in _ARTICLES]
    for d in range(days):
        day = lo + timedelta(days=d)
        at = day + timedelta(seconds=rng.randrange(3600, 80000))
        log.hit(at, "198.51.100.150", "GET", "/robots.txt", 200, "-", _DISGUISED)
        for path in rng.sample(articles, rng.randint(3, 8)):
            at += timedelta(seconds=rng.randrange(30, 300))
            log.hit(at, "198.51.100.150", "GET", path, 200, "-", _DISGUISED)
        at, ua = day + timedelta(seconds=rng.randrange(3600, 80000)), rng.choice(_DESKTOP)
        for path in rng.sample(articles, rng.randint(14, 20)):  # over two pages a second
            at += timedelta(seconds=rng.choice((0, 0, 1)))
            log.hit(at, "203.0.113.40", "GET", path, 200, "-", ua)
            for asset in _STATIC:
                log.hit(at, "203.0.113.40", "GET", asset, 304, SUPPORT_SITE + path, ua)
        at = day + timedelta(seconds=rng.randrange(3600, 20000))
        for path in rng.sample(articles, rng.randint(10, 16)):
            log.hit(at, "198.51.100.151", "GET", path, 200, "-", _QUIET_CRAWLER)
            at += timedelta(seconds=rng.randrange(180, 1200))
        for _ in range(rng.randint(2, 5)):
            staff = f"10.20.{rng.randrange(4)}.{rng.randrange(1, 255)}"
            at = _at_hour(rng, day)
            log.session(at, "-", rng.choice(articles), _DESKTOP, ip=staff)
        for hour in range(24):
            at = day + timedelta(hours=hour, seconds=rng.randrange(60))
            log.hit(at, "127.0.0.1", "GET", "/healthz", 200, "-", "kube-probe/1.31")
        for _ in range(rng.randint(1, 3)):
            at = day + timedelta(seconds=rng.randrange(86400))
            dummy = "Apache/2.4.62 (Debian) (internal dummy connection)"
            log.hit(at, "::1", "OPTIONS", "*", 200, "-", dummy, protocol="HTTP/1.0")


def access_log_lines(
    company: SampleCompany, seed: int = 7, start: date = SAMPLE_START, days: int = SAMPLE_DAYS
) -> list[str]:
    """The support site's access log over [start, start + days), combined format, time-ordered."""
    return [line for _, line in _access_log(company, seed, start, days)]


def write_sample(
    out_dir: Path, seed: int = 7, start: date = SAMPLE_START, days: int = SAMPLE_DAYS
) -> list[Path]:
    """Write the access log rotated one day per file, newest first: access.log, access.log.1,
    access.log.2.gz, ... Returns the paths written."""
    entries = _access_log(generate(seed, start, days), seed, start, days)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for age in range(days):
        day = start + timedelta(days=days - 1 - age)
        data = "".join(line + "\n" for when, line in entries if when.date() == day).encode()
        path = out_dir / ("access.log" if age == 0 else f"access.log.{age}")
        if age >= 2:
            path = path.with_name(path.name + ".gz")
            data = gzip.compress(data, mtime=0)
        path.write_bytes(data)
        paths.append(path)
    return paths


# --- private metrics and direct messages ---------------------------------------------------

_TCO_VISIT = re.compile(r'"GET (\S+) HTTP/1\.1" \d{3} \S+ "(https://t\.co/\w+)"')


@cache
def _link_clicks(seed: int, start: date, days: int) -> dict[str, int]:
    """For each own post linking the support site, the t.co visits of the access log it could
    be credited with: those through its own link, and any t.co visit landing on a page it links
    within 24 hours of it (a per-post attribution may credit those to it). Cached: the log
    takes a tenth of a second to make and generate() runs often."""
    company = _public(seed, start, days)
    visits = []
    for when, line in _access_log(company, seed, start, days):
        match = _TCO_VISIT.search(line)
        if match:
            visits.append((when, match[2], match[1].split("?")[0]))
    own = {u["id"] for u in company.users if u["username"] in (BRAND, SUPPORT)}
    by_id = {t["id"]: t for t in company.tweets}
    clicks = {}
    for tweet in company.tweets:
        if tweet["author_id"] not in own or _is_retweet(tweet):
            continue
        urls = [
            u
            for u in tweet.get("entities", {}).get("urls", [])
            if u["expanded_url"].startswith(SUPPORT_SITE + "/")
        ]
        if not urls:
            continue
        root = by_id.get(tweet["edit_history_tweet_ids"][0], tweet)
        posted = parse_stamp(root["created_at"])
        codes = {u["url"] for u in urls}
        paths = {u["expanded_url"].removeprefix(SUPPORT_SITE) for u in urls}
        clicks[tweet["id"]] = sum(
            1
            for when, code, path in visits
            if code in codes or (path in paths and posted <= when <= posted + timedelta(days=1))
        )
    return clicks


def _is_retweet(tweet: dict) -> bool:
    return any(r["type"] == "retweeted" for r in tweet.get("referenced_tweets", []))


def _private_metrics(company: SampleCompany, clicks: dict[str, int], rng: random.Random) -> None:
    """Give the company's own posts (retweets aside: X has no private metrics for them)
    non_public_metrics and organic_metrics: impressions at least the public engagement, link
    clicks the log's t.co visits (every version of an edited post shares its link) plus clicks
    whose visit never arrives (closed tabs, blocked referrers)."""
    own = {u["id"] for u in company.users if u["username"] in (BRAND, SUPPORT)}
    for tweet in company.tweets:
        if tweet["author_id"] not in own or _is_retweet(tweet):
            continue
        public = tweet["public_metrics"]
        engagement = sum(
            public[key]
            for key in (
                "like_count",
                "retweet_count",
                "reply_count",
                "quote_count",
                "bookmark_count",
            )
        )
        impressions = max(public["impression_count"], engagement)
        lost = round(impressions * rng.uniform(0.0005, 0.002))
        link_clicks = (
            clicks.get(tweet["id"], 0) + lost if tweet.get("entities", {}).get("urls") else 0
        )
        profile_clicks = round(impressions * rng.uniform(0.002, 0.01))
        impressions = max(impressions, engagement + link_clicks + profile_clicks)
        tweet["non_public_metrics"] = {
            "impression_count": impressions,
            "url_link_clicks": link_clicks,
            "user_profile_clicks": profile_clicks,
        }
        tweet["organic_metrics"] = {
            "impression_count": impressions,
            "like_count": public["like_count"],
            "reply_count": public["reply_count"],
            "retweet_count": public["retweet_count"],
            "url_link_clicks": link_clicks,
            "user_profile_clicks": profile_clicks,
        }


_DM_OPENERS = (
    "Hi! {issue}",
    "Hello, following up from my post: {issue}",
    "hey, {issue}",
    "Hi there, {issue}. Can you help?",
)
_DM_DETAILS = (
    "My order number is #AC-{order}.",
    "The account email is {email}",
    "It's order #AC-{order}, placed last week.",
    "You can reach me at {email} if that's easier.",
    "Our workspace is called {handle}-prod.",
    "Happens on both Chrome and Firefox.",
    "It started right after yesterday's update.",
)
_DM_SUPPORT_MORE = (
    "I've added a note to your account so the team has the context.",
    "If it happens again, just reply here and we'll pick it up.",
    "I've also sent the details to {email}.",
)
_DM_THANKS = ("thanks, that fixed it!", "great, thank you", "ok will try tonight", "perfect 🙏")


def _dm_events(company: SampleCompany, rng: random.Random, start: date, days: int) -> list[dict]:
    """Customers' one-to-one conversations with @acmesupport over [start, start + days):
    3-8 a day, those the public replies sent to DMs ("DM us", "sent you a DM") first. A
    customer writes 1-3 messages, support answers after a delay like the public replies' (about
    15% never answered), sometimes with a second message, and the customer may thank them.
    X DmEvent objects (MessageCreate), oldest first; @acmecloud has none."""
    users = {u["username"]: u for u in company.users}
    support = users[SUPPORT]
    customers = {u["id"]: u for u in company.users[2:]}
    lo = datetime.combine(start, time(), UTC)
    hi = lo + timedelta(days=days)
    invited = []
    for tweet in company.tweets:
        if tweet["author_id"] == support["id"] and "DM us" in tweet["text"]:
            invited.append((parse_stamp(tweet["created_at"]), tweet.get("in_reply_to_user_id")))
        elif tweet["author_id"] in customers and "sent you a DM" in tweet["text"]:
            invited.append((parse_stamp(tweet["created_at"]), tweet["author_id"]))
    events: list[dict] = []
    ids: set[int] = set()
    for d in range(days):
        day = lo + timedelta(days=d)
        starts = [
            (when + timedelta(seconds=rng.randrange(60, 1800)), customers[who])
            for when, who in invited
            if day <= when < day + timedelta(days=1) and who in customers
        ]
        for _ in range(max(0, rng.randint(3, 8) - len(starts))):
            starts.append((_at_hour(rng, day), rng.choice(list(customers.values()))))
        for when, customer in starts:
            _dm_conversation(rng, customer, support, when, events, ids)
    kept = [e for e in events if lo <= parse_stamp(e["created_at"]) < hi]
    return sorted(kept, key=lambda e: int(e["id"]))


def _dm_conversation(
    rng: random.Random,
    customer: dict,
    support: dict,
    when: datetime,
    events: list[dict],
    ids: set[int],
) -> None:
    conversation = "-".join(sorted((customer["id"], support["id"]), key=int))
    first, *rest = customer["name"].split()
    handle = customer["username"]
    email = re.sub(r"[^a-z.]", "", f"{first}.{rest[-1] if rest else 'x'}".lower()) + "@example.com"

    def say(sender: dict, at: datetime, text: str) -> None:
        while True:
            ms = int(at.timestamp()) * 1000 + rng.randrange(1000)
            number = ((ms - _TWITTER_EPOCH_MS) << 22) | (rng.randrange(1 << 22))
            if number not in ids:
                ids.add(number)
                break
        events.append(
            {
                "id": str(number),
                "event_type": "MessageCreate",
                "text": text.format(email=email, handle=handle, order=rng.randrange(10000, 99999)),
                "created_at": _stamp(at),
                "dm_conversation_id": conversation,
                "sender_id": sender["id"],
                "participant_ids": [customer["id"], support["id"]],
            }
        )

    issue, _, advice = rng.choice(_ISSUES)
    say(customer, when, rng.choice(_DM_OPENERS).format(issue=issue))
    for detail in rng.sample(_DM_DETAILS, rng.choice((0, 1, 1, 2))):
        when += timedelta(seconds=rng.randrange(20, 300))
        say(customer, when, detail)
    if rng.random() < 0.15:
        return  # never answered
    when += _response_delay(rng)
    say(support, when, f"Hi {first}, thanks for reaching out! {advice}")
    if rng.random() < 0.3:
        when += timedelta(seconds=rng.randrange(20, 180))
        say(support, when, rng.choice(_DM_SUPPORT_MORE))
    if rng.random() < 0.5:
        when += timedelta(seconds=rng.randrange(120, 3600))
        say(customer, when, rng.choice(_DM_THANKS))
