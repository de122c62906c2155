"""Plain-Python logic of the Salesforce connector: no ORM, importable without Odoo.

``outbound_message`` parses Outbound Message SOAP envelopes and writes the
acknowledgement; ``jwt_bearer`` signs OAuth 2.0 JWT bearer assertions; ``soql``
builds the delta-sync queries and reads the API usage header; ``pager`` walks
query result pages and decides how far the sync watermark may move;
``mapper`` turns Salesforce records into canonical dataclasses and validates
them; ``writeback`` builds sObject Collections update bodies and reads their
results; ``rest_errors`` reads REST error bodies; ``timestamps`` converts
Salesforce date and datetime strings.
"""
