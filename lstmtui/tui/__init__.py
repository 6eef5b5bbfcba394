"""The Textual app: renders engine events and sends commands; the engine lives in lstmtui.core."""
