from . import qtc_assurance_check, qtc_flow_sla, qtc_q2c_fact
