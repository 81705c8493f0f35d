/*
 * avk_fhir: an HL7 FHIR R4 AdverseEvent resource (JSON) mapped to a
 * DeviationReported document (JSON), so that a filing system that speaks FHIR
 * can file a deviation without learning our schema.
 *
 * The mapping only maps: it reads the FHIR elements, translates codes and
 * extensions, and rejects what cannot be mapped (wrong resourceType, wrong JSON
 * types, missing elements with no default, codes it does not know), naming the
 * FHIR element path. It does not apply the contract's field rules - check
 * digits, HSA-id and uuid format, municipality codes, timestamps in the past -
 * because avk_json_to_avro() with AVK_JSON_VALIDATE applies them to the
 * produced document, naming DeviationReported paths. Field by field:
 * docs/fhir-mapping.md.
 */
#ifndef AVK_FHIR_H
#define AVK_FHIR_H

#include <jansson.h>

#include "common/util/errors.h"

/** Base URL of avvik's extensions; the extension's name follows ("care-setting"). */
#define AVK_FHIR_EXTENSION_BASE "https://avvik.vardsamverkan.se/fhir/StructureDefinition/"

/** Code system of DeviationReported categories, codes in lower-kebab-case ("discharge-planning").
 */
#define AVK_FHIR_CATEGORY_SYSTEM "https://avvik.vardsamverkan.se/fhir/CodeSystem/category"

/** Identifier systems. */
#define AVK_FHIR_SYSTEM_URI               "urn:ietf:rfc:3986"
#define AVK_FHIR_SYSTEM_PERSONNUMMER      "urn:oid:1.2.752.129.2.1.3.1"
#define AVK_FHIR_SYSTEM_SAMORDNINGSNUMMER "urn:oid:1.2.752.129.2.1.3.3"
#define AVK_FHIR_SYSTEM_HSA_ID            "urn:oid:1.2.752.129.2.1.4.1"

/**
 * @brief Maps a FHIR R4 AdverseEvent to a DeviationReported document, shaped
 * as avk_json_to_avro() expects it (every field present, defaults explicit).
 *
 * resource is not modified. The result is not yet validated: pass it to
 * avk_json_to_avro() with AVK_JSON_VALIDATE before filing it.
 *
 * @returns a new reference for the caller to json_decref(), or NULL with every
 * mapping error added to errs as "FHIR path: reason" (e.g.
 * "AdverseEvent.recordedDate: is required: it supplies reported_at"). Errors
 * never repeat a personal identity number.
 */
json_t *avk_fhir_to_deviation(const json_t *resource, struct avk_errors *errs);

#endif
