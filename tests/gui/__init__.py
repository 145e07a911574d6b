"""The real window, driven with QTest clicks and key presses (offscreen)."""
