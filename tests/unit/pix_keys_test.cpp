#include "pix/domain/pix_keys.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pix::domain {
namespace {

TEST(PixKeyCpf, AcceptsBareAndFormatted) {
  EXPECT_TRUE(is_valid_cpf("52998224725"));
  EXPECT_TRUE(is_valid_cpf("529.982.247-25"));
}

TEST(PixKeyCpf, RejectsWrongCheckDigitsAndRepeatedDigits) {
  EXPECT_FALSE(is_valid_cpf("529.982.247-24"));
  EXPECT_FALSE(is_valid_cpf("52998224715"));  // first check digit wrong
  // 111.111.111-11 satisfies the check-digit arithmetic but is never issued.
  EXPECT_FALSE(is_valid_cpf("111.111.111-11"));
  EXPECT_FALSE(is_valid_cpf("00000000000"));
}

TEST(PixKeyCpf, RejectsOtherShapes) {
  EXPECT_FALSE(is_valid_cpf("5299822472"));     // 10 digits
  EXPECT_FALSE(is_valid_cpf("529982247250"));   // 12 digits
  EXPECT_FALSE(is_valid_cpf("529.982.24725"));  // half formatted
  EXPECT_FALSE(is_valid_cpf("529-982-247.25"));
  EXPECT_FALSE(is_valid_cpf("5299822472A"));
  EXPECT_FALSE(is_valid_cpf(""));
}

TEST(PixKeyCnpj, AcceptsNumericCnpj) {
  EXPECT_TRUE(is_valid_cnpj("11.444.777/0001-61"));
  EXPECT_TRUE(is_valid_cnpj("11444777000161"));
  EXPECT_FALSE(is_valid_cnpj("11.444.777/0001-62"));
  EXPECT_FALSE(is_valid_cnpj("11.444.777/0001-71"));
}

TEST(PixKeyCnpj, AcceptsAlphanumericCnpj) {
  EXPECT_TRUE(is_valid_cnpj("12.ABC.345/01DE-35"));
  EXPECT_TRUE(is_valid_cnpj("12ABC34501DE35"));
  EXPECT_FALSE(is_valid_cnpj("12ABC34501DE36"));
  EXPECT_FALSE(is_valid_cnpj("12ABD34501DE35"));  // one letter changed
}

TEST(PixKeyCnpj, RejectsLowercaseLettersLetterCheckDigitsAndRepeats) {
  EXPECT_FALSE(is_valid_cnpj("12.abc.345/01de-35"));
  EXPECT_FALSE(is_valid_cnpj("12abc34501de35"));
  EXPECT_FALSE(is_valid_cnpj("12ABC34501DE3A"));
  EXPECT_FALSE(is_valid_cnpj("00000000000000"));
  EXPECT_FALSE(is_valid_cnpj("1144477700016"));  // 13 characters
}

TEST(PixKeyPhone, AcceptsE164AndBrazilianMobiles) {
  EXPECT_TRUE(is_valid_phone("+5511987654321"));
  EXPECT_TRUE(is_valid_phone("+14155552671"));
  EXPECT_TRUE(is_valid_phone("+447911123456"));
}

TEST(PixKeyPhone, RejectsBrazilianLandlinesAndMalformedNumbers) {
  EXPECT_FALSE(is_valid_phone("+551187654321"));    // no 9: a landline
  EXPECT_FALSE(is_valid_phone("+5501987654321"));   // area code 01
  EXPECT_FALSE(is_valid_phone("+55119876543210"));  // one digit too many
  EXPECT_FALSE(is_valid_phone("5511987654321"));    // no +
  EXPECT_FALSE(is_valid_phone("+0123456789"));
  EXPECT_FALSE(is_valid_phone("+1 4155552671"));
  EXPECT_FALSE(is_valid_phone("+12"));
  EXPECT_FALSE(is_valid_phone("+12345678901234567"));  // 17 digits
}

TEST(PixKeyEmail, AcceptsOrdinaryLowercaseAddresses) {
  EXPECT_TRUE(is_valid_email("alice@example.com"));
  EXPECT_TRUE(is_valid_email("joao.silva+pix@banco.com.br"));
  EXPECT_TRUE(is_valid_email(std::string(64, 'a') + "@examples.com"));  // 77 characters
}

TEST(PixKeyEmail, RejectsUppercaseAndMalformedAddresses) {
  EXPECT_FALSE(is_valid_email("Alice@example.com"));
  EXPECT_FALSE(is_valid_email("alice@Example.com"));
  EXPECT_FALSE(is_valid_email("alice.example.com"));
  EXPECT_FALSE(is_valid_email("alice@@example.com"));
  EXPECT_FALSE(is_valid_email("a@b@example.com"));
  EXPECT_FALSE(is_valid_email("@example.com"));
  EXPECT_FALSE(is_valid_email("alice@localhost"));
  EXPECT_FALSE(is_valid_email("alice@example..com"));
  EXPECT_FALSE(is_valid_email("alice@.example.com"));
  EXPECT_FALSE(is_valid_email("alice@example.com."));
  EXPECT_FALSE(is_valid_email("alice@-example.com"));
  EXPECT_FALSE(is_valid_email(".alice@example.com"));
  EXPECT_FALSE(is_valid_email("al ice@example.com"));
  EXPECT_FALSE(is_valid_email(std::string(65, 'a') + "@example.com"));
  EXPECT_FALSE(is_valid_email(std::string(64, 'a') + "@exampless.com"));  // 78 characters
}

TEST(PixKeyEvp, AcceptsOnlyLowercaseUuids) {
  EXPECT_TRUE(is_valid_evp("123e4567-e89b-12d3-a456-426614174000"));
  EXPECT_FALSE(is_valid_evp("123E4567-E89B-12D3-A456-426614174000"));
  EXPECT_FALSE(is_valid_evp("123e4567e89b12d3a456426614174000"));
  EXPECT_FALSE(is_valid_evp("123e4567-e89b-12d3-a456-42661417400g"));
  EXPECT_FALSE(is_valid_evp("123e4567-e89b-12d3-a4564-26614174000"));
}

TEST(PixKeyDetect, FindsTheTypeOfEachValidKey) {
  EXPECT_EQ(detect_key_type("52998224725"), KeyType::kCpf);
  EXPECT_EQ(detect_key_type("529.982.247-25"), KeyType::kCpf);
  EXPECT_EQ(detect_key_type("11444777000161"), KeyType::kCnpj);
  EXPECT_EQ(detect_key_type("11.444.777/0001-61"), KeyType::kCnpj);
  EXPECT_EQ(detect_key_type("12.ABC.345/01DE-35"), KeyType::kCnpj);
  EXPECT_EQ(detect_key_type("+5511987654321"), KeyType::kPhone);
  EXPECT_EQ(detect_key_type("alice@example.com"), KeyType::kEmail);
  EXPECT_EQ(detect_key_type("123e4567-e89b-12d3-a456-426614174000"), KeyType::kEvp);
}

TEST(PixKeyDetect, GivesNothingForInvalidKeys) {
  EXPECT_EQ(detect_key_type("529.982.247-24"), std::nullopt);
  EXPECT_EQ(detect_key_type("11.444.777/0001-62"), std::nullopt);
  EXPECT_EQ(detect_key_type("+551187654321"), std::nullopt);
  EXPECT_EQ(detect_key_type("Alice@example.com"), std::nullopt);
  EXPECT_EQ(detect_key_type("alice"), std::nullopt);
  EXPECT_EQ(detect_key_type(""), std::nullopt);
  EXPECT_EQ(detect_key_type(std::string(78, '1')), std::nullopt);
  EXPECT_EQ(detect_key_type(std::string(64, 'a') + "@exampless.com"), std::nullopt);
}

TEST(PixKeyCheck, ExplainsWhyAKeyIsInvalid) {
  EXPECT_EQ(check_key("529.982.247-24").error, "cpf check digits do not match");
  EXPECT_EQ(check_key("111.111.111-11").error, "cpf cannot be 11 identical digits");
  EXPECT_EQ(check_key("11.444.777/0001-62").error, "cnpj check digits do not match");
  EXPECT_EQ(check_key("12abc34501de35").error, "cnpj letters must be uppercase");
  EXPECT_EQ(check_key("+551187654321").error,
            "brazilian phone must be a mobile: +55, 2-digit area code, 9 and 8 digits");
  EXPECT_EQ(check_key("Alice@example.com").error, "e-mail must be lowercase");
  EXPECT_EQ(check_key("123E4567-E89B-12D3-A456-426614174000").error, "evp must be a lowercase uuid");
  EXPECT_EQ(check_key("").error, "key is empty");
  EXPECT_EQ(check_key(std::string(78, 'a')).error, "key is longer than 77 characters");
  EXPECT_EQ(check_key("alice").error, "key is not a cpf, cnpj, phone (+...), e-mail or evp");
}

TEST(PixKeyCheck, ValidKeyHasItsTypeAndNoError) {
  const KeyCheck check = check_key("+14155552671");
  ASSERT_TRUE(check);
  EXPECT_EQ(check.type, KeyType::kPhone);
  EXPECT_TRUE(check.error.empty());
}

TEST(PixKeyCheck, DeclaredTypeIsEnforced) {
  EXPECT_TRUE(check_key("52998224725", KeyType::kCpf));
  const KeyCheck wrong = check_key("52998224725", KeyType::kPhone);
  EXPECT_FALSE(wrong);
  EXPECT_EQ(wrong.error, "phone must start with + and the country code");
  EXPECT_FALSE(check_key("alice@example.com", KeyType::kEvp));
}

TEST(PixKeyNames, TypesHaveTheirApiNames) {
  EXPECT_EQ(to_string(KeyType::kCpf), "cpf");
  EXPECT_EQ(to_string(KeyType::kCnpj), "cnpj");
  EXPECT_EQ(to_string(KeyType::kPhone), "phone");
  EXPECT_EQ(to_string(KeyType::kEmail), "email");
  EXPECT_EQ(to_string(KeyType::kEvp), "evp");
}

TEST(PixKeyCanonical, StripsPunctuationFromCpfAndCnpjOnly) {
  EXPECT_EQ(canonical_key("529.982.247-25"), "52998224725");
  EXPECT_EQ(canonical_key("12.ABC.345/01DE-35"), "12ABC34501DE35");
  EXPECT_EQ(canonical_key("+5511987654321"), "+5511987654321");
  EXPECT_EQ(canonical_key("alice"), "alice");
  EXPECT_EQ(canonical_key("529.982.247-24"), "529.982.247-24");  // invalid keys are left as given
}

}  // namespace
}  // namespace pix::domain
