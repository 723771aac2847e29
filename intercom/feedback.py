"""What the door shows and plays: the tone and LED-pattern names every layer shares."""
