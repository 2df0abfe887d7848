"""The web app for the people who get the reminders: HTML shells and ES modules served by
duetime itself (no build step, no CDN), on top of the same JSON APIs as every client."""
