"""Dependencies handed to routes: the loaded model and the settings, as Annotated aliases.

They are `async def` though they never await: FastAPI runs a plain `def` dependency in the
thread pool, a hop that cost more CPU than the lookup itself (two per /predict request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.config import Settings
from server.inference import Predictor


async def get_predictor(request: Request) -> Predictor:
    predictor: Predictor = request.app.state.predictor
    return predictor


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
