"""Demo support: redistributable portraits, a simulated camera that performs the active
liveness challenge, and a Y4M writer that feeds it to a browser as a fake webcam.

Everything here is for demonstrations and browser tests only. The camera is *simulated*:
it synthesises head turns from one still photo, which is exactly the "deepfake that
performs the challenge" that :mod:`face_engine.liveness` states it cannot stop.
"""
