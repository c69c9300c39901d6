"""The demo and what it needs: the story on the bundled example, a tiny base model, and the local emulators of
GitHub and the Hub that tests use too."""
