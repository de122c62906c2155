"""Tables of the Salesforce connector: event types, sync order, defaults."""

PROVIDER = "salesforce"
# Where the connector's requests (carrying its credentials and tokens) may go,
# as Salesforce documents its domains: the login hosts of production and
# sandboxes, My Domain instance hosts (<domain>.my.salesforce.com, sandboxes
# under <domain>--<sandbox>.sandbox.my.salesforce.com) and the instance hosts
# of orgs without enhanced domains (<instance>.salesforce.com). Other clouds
# (Government Cloud Plus, a stand-in) are allowed in the server configuration.
OUTBOUND_HOSTS = (
    "login.salesforce.com",
    "test.salesforce.com",
    "*.my.salesforce.com",
    "*.salesforce.com",
)

# sObject types the connector applies, in the order a sweep reads them: accounts
# first so contacts and opportunities find their customer already bound.
SYNC_OBJECTS = ("Account", "Contact", "Opportunity")
# Backend field holding the watermark of each object's delta query.
WATERMARK_FIELDS = {
    "Account": "salesforce_account_watermark",
    "Contact": "salesforce_contact_watermark",
    "Opportunity": "salesforce_watermark",
}
# Event type suffixes: a real-time Outbound Message, or a record read by a sweep.
CHANNEL_NOTIFICATION = "notification"
CHANNEL_SYNC = "sync"

# Binding types (external_type of qtc.binding).
BINDING_ACCOUNT = "Account"
BINDING_CONTACT = "Contact"
BINDING_OPPORTUNITY = "Opportunity"
BINDING_LINE = "OpportunityLineItem"
# The Odoo models each binding type may point at (qtc.binding checks it).
BINDING_MODELS = {
    BINDING_ACCOUNT: ("res.partner",),
    BINDING_CONTACT: ("res.partner",),
    BINDING_OPPORTUNITY: ("sale.order",),
    BINDING_LINE: ("sale.order.line",),
}

# Value map codes an administrator fills in.
MAP_PRODUCT = "salesforce.product"
MAP_PAYMENT_TERM = "salesforce.payment_term"
MAP_PRICELIST = "salesforce.pricelist"

# Largest page the REST query resource returns; asking for it saves API calls.
QUERY_BATCH_SIZE = 2000
# How long to wait when the org's daily API allowance is (nearly) used up.
THROTTLE_DELAY_SECONDS = 1800
# A usage reading older than this no longer blocks calls: the next call
# refreshes it (the daily allowance is a rolling 24 h window).
USAGE_READING_MAX_AGE_SECONDS = 3600
# Wait before retrying records Salesforce could not update (row locks...).
WRITEBACK_RETRY_SECONDS = 60
# Job priority of the write-back (event jobs have 10; lower runs first): it
# waits while events are ready to apply, so the confirmations of a whole sweep
# share one flush, 200 records a call, instead of a flush between two events.
WRITEBACK_PRIORITY = 20

# Outbound Message answers: SOAP faults use the sender's status conventions.
SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"
