"""Calls the served model with seldon-core's own SeldonClient, over REST and gRPC; prints the predictions.
Runs in venvs/serving (seldon-core cannot be installed beside JupyterLab)."""
import json
import sys

import numpy as np
from seldon_core.seldon_client import SeldonClient
from seldon_core.utils import get_data_from_proto

ROW = np.array([[13.4, 20.52, 88.64, 556.7, 0.1106, 0.1469, 0.1445, 0.08172, 0.2116, 0.07325, 0.3906,
                 0.9306, 3.093, 33.67, 0.005414, 0.02265, 0.03452, 0.01334, 0.01705, 0.004005, 16.41,
                 29.66, 113.3, 844.4, 0.1574, 0.3856, 0.5106, 0.2051, 0.3585, 0.1109]])

results = {}
for transport, endpoint in (("rest", "localhost:9000"), ("grpc", "localhost:5000")):
    sc = SeldonClient(microservice_endpoint=endpoint)
    response = sc.microservice(data=ROW, method="predict", transport=transport)
    if not response.success:
        sys.exit(f"{transport}: {response.msg}")
    results[transport] = [int(v) for v in np.ravel(get_data_from_proto(response.response))]
print(json.dumps(results))
