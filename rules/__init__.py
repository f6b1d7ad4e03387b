"""One module per rule (or tight family of rules); see audit/rule.py for the shape of a rule."""
