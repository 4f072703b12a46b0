"""Words and shapes for the demo data: a support assistant for a fictional online bookshop."""

QUESTIONS = [
    ("Where is my order {order}?", "order_status"),
    ("Can I return a book I bought {days} days ago?", "returns"),
    ("Do you ship to {country}?", "shipping"),
    ("My e-book won't open on my {device}. What can I do?", "ebooks"),
    ("How do I change the delivery address for order {order}?", "order_change"),
    ("Is '{title}' available in hardcover?", "catalogue"),
    ("Why was I charged twice for order {order}?", "billing"),
    ("Can I gift a book to someone in {country}?", "gifting"),
    ("What does the loyalty programme give me after {days} purchases?", "loyalty"),
    ("How do I cancel my subscription before it renews in {days} days?", "subscription"),
]

ANSWERS = {
    "order_status": "Order {order} left our warehouse yesterday and should arrive within 2 days.",
    "returns": "Books can be returned within 30 days in their original condition; "
    "{days} days is within that window, so a free return label is on its way.",
    "shipping": "Yes, we ship to {country}. Standard delivery takes 5-8 working days.",
    "ebooks": "Please update the reader app on your {device} and sign in again; "
    "your library re-downloads automatically.",
    "order_change": "I've updated the delivery address for order {order}. "
    "You'll get a confirmation email shortly.",
    "catalogue": "'{title}' is available in hardcover and ships within 24 hours.",
    "billing": "The second charge on order {order} was a pre-authorisation; "
    "it disappears within 3 working days.",
    "gifting": "Yes: choose 'This is a gift' at checkout and enter the address in {country}.",
    "loyalty": "After {days} purchases you reach Silver: free shipping and 5% off every order.",
    "subscription": "You can cancel any time under Account → Subscriptions; "
    "nothing will be charged if you cancel within {days} days.",
}

POLICY_DOCS = {
    "order_status": ["shipping/tracking.md", "orders/lifecycle.md"],
    "returns": ["policies/returns.md", "policies/refunds.md"],
    "shipping": ["shipping/countries.md", "shipping/times.md"],
    "ebooks": ["ebooks/devices.md", "ebooks/troubleshooting.md"],
    "order_change": ["orders/changes.md"],
    "catalogue": ["catalogue/formats.md"],
    "billing": ["billing/charges.md", "billing/preauth.md"],
    "gifting": ["orders/gifts.md"],
    "loyalty": ["loyalty/tiers.md"],
    "subscription": ["subscriptions/cancel.md", "subscriptions/billing.md"],
}

COUNTRIES = ["Portugal", "Canada", "Japan", "Kenya", "Norway", "Chile", "New Zealand"]
DEVICES = ["Kindle", "iPad", "Kobo Clara", "Android phone", "Chromebook"]
TITLES = ["The Left Hand of Darkness", "Middlemarch", "Piranesi", "Beloved", "Dune"]
USERS = [
    "amara",
    "bruno",
    "chen",
    "dalia",
    "eitan",
    "farah",
    "goran",
    "hana",
    "ines",
    "jonas",
    "kofi",
    "lena",
    "mateo",
    "nadia",
    "oskar",
    "priya",
    "quentin",
    "rosa",
    "sven",
    "tariq",
]
MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-70b"]
SYSTEM_PROMPT = (
    "You are Paige, the support assistant of Inkwell Books. Answer from the policy "
    "documents provided; say so when you are not sure."
)
TOOL_ERRORS = [
    ("TimeoutError", "Order service did not answer within 10s"),
    ("ConnectionError", "Connection reset by peer while calling inventory"),
    ("ValueError", "Order id 'IW-' is malformed"),
]
ISSUE_CATEGORIES = ["none", "hallucination", "incomplete", "off_topic", "tone"]
RATIONALES = {
    True: ["Correct and cites the policy.", "Clear, friendly, resolves the question.", ""],
    False: [
        "Ignores the 30-day limit in the policy.",
        "Answers a different question.",
        "Invents a delivery date that isn't in the tool output.",
    ],
}
