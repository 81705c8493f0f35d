/* avk_party: see party.h. */
#include "common/contract/party.h"

#include <string.h>

#include "common/contract/ident.h"
#include "common/contract/municipality.h"

int avk_party_parse(const char *code, char *errstr, size_t errstr_size)
{
        if (avk_ident_party(code, errstr, errstr_size) != 0)
                return -1;
        if (strcmp(code, "VGR") == 0)
                return AVK_PARTY_VGR;
        return 1 + (int)(avk_municipality_find(code) - avk_municipalities);
}

const char *avk_party_code(int party)
{
        if (party == AVK_PARTY_VGR)
                return "VGR";
        if (party < 1 || (size_t)party > avk_municipality_cnt)
                return NULL;
        return avk_municipalities[party - 1].code;
}
